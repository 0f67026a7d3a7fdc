"""MongoDB's error codes and names (src/mongo/base/error_codes.yml) as the
stand-in uses them, and the exception every command raises to fail.
"""

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    8: "UnknownError",
    9: "FailedToParse",
    11: "UserNotFound",
    13: "Unauthorized",
    14: "TypeMismatch",
    17: "ProtocolError",
    18: "AuthenticationFailed",
    20: "IllegalOperation",
    22: "InvalidBSON",
    23: "AlreadyInitialized",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    31: "RoleNotFound",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    51: "DollarPrefixedFieldName",
    52: "InvalidIdField",
    56: "EmptyFieldName",
    59: "CommandNotFound",
    64: "WriteConcernFailed",
    66: "ImmutableField",
    67: "CannotCreateIndex",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    74: "NodeNotFound",
    76: "NoReplicationEnabled",
    79: "UnknownReplWriteConcern",
    85: "IndexOptionsConflict",
    86: "IndexKeySpecsConflict",
    89: "NetworkTimeout",
    91: "ShutdownInProgress",
    93: "InvalidReplicaSetConfig",
    94: "NotYetInitialized",
    100: "UnsatisfiableWriteConcern",
    103: "NewReplicaSetConfigurationIncompatible",
    109: "ConfigurationInProgress",
    115: "CommandNotSupported",
    125: "CommandFailed",
    133: "FailedToSatisfyReadPreference",
    166: "CommandNotSupportedOnView",
    189: "PrimarySteppedDown",
    238: "NotImplemented",
    262: "ExceededTimeLimit",
    334: "MechanismUnavailable",
    10107: "NotWritablePrimary",
    11000: "DuplicateKey",
    11600: "InterruptedAtShutdown",
    13297: "DatabaseDifferCase",
    13435: "NotPrimaryNoSecondaryOk",
    31253: "Location31253",
    31254: "Location31254",
    40324: "Location40324",
    51003: "Location51003",
}


class MongoError(Exception):
    """A command failure as mongod reports it: {ok: 0, errmsg, code, codeName}."""

    def __init__(self, code, message, extra=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}

    def reply(self):
        doc = {"ok": 0.0, "errmsg": self.message, "code": self.code,
               "codeName": CODE_NAMES.get(self.code, "Location%d" % self.code)}
        doc.update(self.extra)
        return doc


def not_supported(what):
    """A MongoDB feature the stand-in refuses rather than fakes."""
    return MongoError(238, f"{what} is not supported by the mongod stand-in")

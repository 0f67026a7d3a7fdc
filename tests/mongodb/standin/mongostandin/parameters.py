"""Server parameters (getParameter/setParameter and --setParameter): a table
of MongoDB 5.0 parameters with their types, defaults, bounds and whether
they are settable at startup and/or at runtime. Only the parameters in
HONOURED change the stand-in's behaviour; the others are stored and reported.
"""
import json

from .bsoncodec import Int64, to_shell
from .errors import MongoError

# name: (type, default, settable at startup, settable at runtime, (min, max) or None)
TABLE = {
    "authenticationMechanisms": ("list", ["SCRAM-SHA-1", "SCRAM-SHA-256"], True, False, None),
    "connPoolMaxConnsPerHost": ("int", 200, True, False, (1, None)),
    "cursorTimeoutMillis": ("long", 600000, True, True, (0, None)),
    "diagnosticDataCollectionDirectorySizeMB": ("int", 200, True, True, (10, None)),
    "diagnosticDataCollectionEnabled": ("bool", True, True, True, None),
    "diagnosticDataCollectionFileSizeMB": ("int", 10, True, True, (1, None)),
    "diagnosticDataCollectionPeriodMillis": ("int", 1000, True, True, (100, None)),
    "disableJavaScriptJIT": ("bool", True, True, True, None),
    "enableFlowControl": ("bool", True, True, True, None),
    "enableLocalhostAuthBypass": ("bool", True, True, False, None),
    "enableTestCommands": ("bool", False, True, False, None),
    "featureCompatibilityVersion": ("doc", {"version": "5.0"}, False, False, None),
    "flowControlTargetLagSeconds": ("int", 10, True, True, (1, None)),
    "honorSystemUmask": ("bool", False, True, False, None),
    "initialSyncTransientErrorRetryPeriodSeconds": ("int", 86400, True, True, (0, None)),
    "internalQueryExecMaxBlockingSortBytes": ("long", 104857600, True, True, (0, None)),
    "journalCommitInterval": ("int", 100, True, True, (1, 500)),
    "localLogicalSessionTimeoutMinutes": ("int", 30, True, False, (1, None)),
    "logComponentVerbosity": ("doc", {"verbosity": 0}, True, True, None),
    "logLevel": ("loglevel", 0, True, True, None),
    "maxIndexBuildMemoryUsageMegabytes": ("long", 200, True, True, (50, None)),
    "maxLogSizeKB": ("int", 10, True, True, (0, None)),
    "maxNumActiveUserIndexBuilds": ("int", 3, True, True, (1, None)),
    "maxSessions": ("int", 1000000, True, False, (1, None)),
    "maxTransactionLockRequestTimeoutMillis": ("int", 5, True, True, None),
    "notablescan": ("bool", False, True, True, None),
    "oplogFetcherUsesExhaust": ("bool", True, True, False, None),
    "quiet": ("bool", False, True, True, None),
    "replBatchLimitBytes": ("int", 104857600, True, True, (16777216, 104857600)),
    "replBatchLimitOperations": ("int", 5000, True, True, (1, 1000000)),
    "replWriterThreadCount": ("int", 16, True, False, (1, 256)),
    "scramIterationCount": ("int", 10000, True, True, (5000, None)),
    "scramSHA256IterationCount": ("int", 15000, True, True, (5000, None)),
    "syncdelay": ("double", 60.0, True, True, (0, 31536000)),
    "taskExecutorPoolSize": ("int", 1, True, False, (0, 64)),
    "traceExceptions": ("bool", False, True, True, None),
    "transactionLifetimeLimitSeconds": ("int", 60, True, True, (1, None)),
    "ttlMonitorEnabled": ("bool", True, True, True, None),
    "ttlMonitorSleepSecs": ("int", 60, True, False, (1, None)),
    "waitForSecondaryBeforeNoopWriteMS": ("int", 10, True, True, (0, None)),
    "watchdogPeriodSeconds": ("int", -1, True, False, None),
    "wiredTigerConcurrentReadTransactions": ("int", 128, True, True, (1, None)),
    "wiredTigerConcurrentWriteTransactions": ("int", 128, True, True, (1, None)),
}

# Parameters whose value changes what the stand-in does (the rest are only stored).
HONOURED = ("authenticationMechanisms", "cursorTimeoutMillis", "diagnosticDataCollectionEnabled",
            "diagnosticDataCollectionPeriodMillis", "diagnosticDataCollectionFileSizeMB",
            "enableLocalhostAuthBypass", "localLogicalSessionTimeoutMinutes", "logLevel", "quiet",
            "scramIterationCount", "scramSHA256IterationCount")

SUPPORTED_MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256")

# Arguments any command may carry; never parameter names.
GENERIC_ARGUMENTS = {"lsid", "txnNumber", "autocommit", "startTransaction", "stmtId", "readConcern",
                     "writeConcern", "maxTimeMS", "comment", "apiVersion", "apiStrict", "apiDeprecationErrors",
                     "$readPreference", "$clusterTime", "$db", "$audit", "$client", "$configServerState",
                     "$replData", "$oplogQueryData", "mayBypassWriteBlocking", "clientOperationKey",
                     "showDetails", "allParameters"}


class StartupError(Exception):
    pass


def _bounds(name, value, bounds):
    lo, hi = bounds or (None, None)
    if lo is not None and value < lo:
        raise MongoError(2, f"Invalid value for parameter {name}: {value} is not greater than or equal to {lo}")
    if hi is not None and value > hi:
        raise MongoError(2, f"Invalid value for parameter {name}: {value} is not less than or equal to {hi}")


def coerce(name, value, from_string=False):
    """The value to store for `name`, or MongoError 2 BadValue."""
    kind, _, _, _, bounds = TABLE[name]
    bad = MongoError(2, f"Invalid value for {name}: {name}: {to_shell(value)}")
    if kind == "bool":
        if from_string:
            if value in ("true", "1"):
                return True
            if value in ("false", "0"):
                return False
            raise bad
        return not (value is False or value is None or (type(value) in (int, Int64, float) and value == 0))
    if kind == "loglevel":
        if from_string:
            try:
                value = int(value)
            except ValueError:
                raise bad from None
        if type(value) not in (int, Int64, float, bool):
            raise bad
        level = int(value)
        if level < 0:
            raise MongoError(2, f"Invalid value for logLevel: {name}: {to_shell(value)}")
        return min(level, 5)
    if kind in ("int", "long", "double"):
        if from_string:
            try:
                value = float(value) if kind == "double" else int(value)
            except ValueError:
                raise bad from None
        if type(value) not in (int, Int64, float) or (kind != "double" and type(value) is float
                                                        and not value.is_integer()):
            raise bad
        value = float(value) if kind == "double" else int(value)
        _bounds(name, value, bounds)
        if kind == "long":
            return Int64(value)
        if kind == "int" and not -2 ** 31 <= value < 2 ** 31:
            raise bad
        return value
    if kind == "list":
        if from_string:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        if name == "authenticationMechanisms":
            for mech in value:
                if mech not in SUPPORTED_MECHANISMS:
                    raise MongoError(2, f"Authentication mechanism {mech} is not supported by the mongod stand-in")
        return list(value)
    if kind == "doc":
        if from_string:
            try:
                value = json.loads(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, dict):
            raise MongoError(14, f"log component verbosity is not a BSON object: {name}: {to_shell(value)}")
        return value
    raise bad


class Parameters:
    """The live values; callers hold the server lock."""

    def __init__(self):
        self.values = {name: spec[1] for name, spec in TABLE.items()}
        for name, spec in TABLE.items():
            if spec[0] == "long":
                self.values[name] = Int64(spec[1])

    def apply_startup(self, requested):
        """--setParameter / the config file's setParameter block. Raises StartupError."""
        for name, value in requested.items():
            if name not in TABLE:
                raise StartupError(f"Illegal --setParameter parameter: \"{name}\"")
            if not TABLE[name][2]:
                raise StartupError(f"Cannot use --setParameter to set \"{name}\" at startup")
            try:
                self.values[name] = coerce(name, value, from_string=isinstance(value, str))
            except MongoError as exc:
                raise StartupError(f"Bad value for parameter \"{name}\": {exc.message}") from None

    def get(self, name):
        return self.values[name]

    def get_command(self, cmd):
        """The reply body of getParameter (without ok)."""
        arg = cmd.get("getParameter")
        show_details = isinstance(arg, dict) and bool(arg.get("showDetails"))
        every = arg == "*" or (isinstance(arg, dict) and bool(arg.get("allParameters")))
        names = sorted(TABLE) if every else [k for k in cmd if k in TABLE]
        if not names:
            raise MongoError(72, "no option found to get")
        out = {}
        for name in names:
            value = self.values[name]
            if show_details:
                out[name] = {"value": value, "settableAtRuntime": TABLE[name][3], "settableAtStartup": TABLE[name][2]}
            else:
                out[name] = value
        return out

    def set_command(self, cmd):
        """Validate every named parameter, then set them all; returns {was: first old value}."""
        requested = [(k, v) for k, v in cmd.items() if k != "setParameter" and k not in GENERIC_ARGUMENTS]
        if not requested:
            raise MongoError(72, "no option found to set, use help:true to see options ")
        coerced, seen = [], set()
        for name, value in requested:
            if name not in TABLE:
                raise MongoError(72, f"attempted to set unrecognized parameter [{name}], use help:true to see options ")
            if not TABLE[name][3]:
                raise MongoError(20, f"not allowed to change [{name}] at runtime")
            if name in seen:
                raise MongoError(72, f"attempted to set parameter [{name}] twice in the same setParameter command")
            seen.add(name)
            coerced.append((name, coerce(name, value)))
        was = self.values[coerced[0][0]]
        for name, value in coerced:
            self.values[name] = value
        return {"was": was}, [name for name, _ in coerced]

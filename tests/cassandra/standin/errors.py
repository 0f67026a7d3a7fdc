"""The native protocol's error codes as exceptions, each able to write its
ERROR body (code, message, and the extra fields the code carries)."""
import struct


def _string(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


class CqlError(Exception):
    code = 0x0000

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def extra(self):
        return b""

    def body(self):
        return struct.pack(">i", self.code) + _string(self.message) + self.extra()


class ServerError(CqlError):
    code = 0x0000


class ProtocolError(CqlError):
    code = 0x000A


class BadCredentials(CqlError):
    code = 0x0100


class Unavailable(CqlError):
    code = 0x1000

    def __init__(self, consistency, required, alive):
        from cqlwire import CONSISTENCY_NAMES
        super().__init__(f"Cannot achieve consistency level {CONSISTENCY_NAMES.get(consistency, consistency)}")
        self.consistency, self.required, self.alive = consistency, required, alive

    def extra(self):
        return struct.pack(">Hii", self.consistency, self.required, self.alive)


class Overloaded(CqlError):
    code = 0x1001


class IsBootstrapping(CqlError):
    code = 0x1002


class TruncateError(CqlError):
    code = 0x1003


class WriteTimeout(CqlError):
    code = 0x1100

    def __init__(self, message, consistency, received, block_for, write_type="SIMPLE"):
        super().__init__(message)
        self.consistency, self.received, self.block_for, self.write_type = consistency, received, block_for, write_type

    def extra(self):
        return struct.pack(">Hii", self.consistency, self.received, self.block_for) + _string(self.write_type)


class ReadTimeout(CqlError):
    code = 0x1200

    def __init__(self, message, consistency, received, block_for, data_present=False):
        super().__init__(message)
        self.consistency, self.received, self.block_for, self.data_present = consistency, received, block_for, data_present

    def extra(self):
        return struct.pack(">HiiB", self.consistency, self.received, self.block_for, 1 if self.data_present else 0)


class SyntaxError_(CqlError):
    code = 0x2000


class Unauthorized(CqlError):
    code = 0x2100


class InvalidRequest(CqlError):
    code = 0x2200


class ConfigurationException(CqlError):
    code = 0x2300


class AlreadyExists(CqlError):
    code = 0x2400

    def __init__(self, keyspace, table=""):
        if table:
            message = f"Cannot add already existing table \"{table}\" to keyspace \"{keyspace}\""
        else:
            message = f"Cannot add existing keyspace \"{keyspace}\""
        super().__init__(message)
        self.keyspace, self.table = keyspace, table

    def extra(self):
        return _string(self.keyspace) + _string(self.table)


class Unprepared(CqlError):
    code = 0x2500

    def __init__(self, statement_id):
        super().__init__(f"Prepared query with ID {statement_id.hex()} not found (either the query was not "
                         f"prepared on this host (maybe the host has been restarted?) or you have prepared too "
                         f"many queries and it has been evicted from the internal cache)")
        self.statement_id = statement_id

    def extra(self):
        return struct.pack(">H", len(self.statement_id)) + self.statement_id

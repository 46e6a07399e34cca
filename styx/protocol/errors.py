"""Tarantool errors: codes, messages, and their wire encoding.

`BoxError` is what every layer raises for a Tarantool error, and what an app
raises (as `box.error`) to send a chosen code. It carries what Tarantool's
`struct error` carries: a type name ("ClientError", ...), a code, the
formatted message, a file and line, errno, optional payload fields and a
cause. `encode_error_body` turns it into the body of an error reply: the
message under ERROR_24 (0x31, what pre-2.4 clients read) and the MP_ERROR
stack under ERROR (0x52), keys in Tarantool's order (0, 2, 1, 3, 4, 5, 6),
the error first and then its causes.

The table holds the codes Styx raises, with Tarantool's message formats
(`src/box/errcode.h`), converted to Python %-formats.
"""

from __future__ import annotations

import sys
from typing import Any

from . import constants as C

__all__ = ["BoxError", "ER", "encode_error_body", "error_from_exception"]


class ER:
    """Error codes by Tarantool's names (ER_ dropped)."""

    UNKNOWN = 0
    ILLEGAL_PARAMS = 1
    MEMORY_ISSUE = 2
    TUPLE_FOUND = 3
    UNSUPPORTED = 5
    READONLY = 7
    KEY_PART_TYPE = 18
    EXACT_MATCH = 19
    INVALID_MSGPACK = 20
    TUPLE_NOT_ARRAY = 22
    FIELD_TYPE = 23
    UPDATE_SPLICE = 25
    UPDATE_ARG_TYPE = 26
    UNKNOWN_UPDATE_OP = 28
    UPDATE_FIELD = 29
    FUNCTION_TX_ACTIVE = 30
    WAL_IO = 40
    CASCADE_ROLLBACK = 134
    KEY_PART_COUNT = 31
    PROC_LUA = 32
    NO_SUCH_PROC = 33
    NO_SUCH_INDEX_ID = 35
    NO_SUCH_SPACE = 36
    NO_SUCH_FIELD_NO = 37
    FIELD_MISSING = 39
    ACCESS_DENIED = 42
    CREATE_USER = 43
    DROP_USER = 44
    NO_SUCH_USER = 45
    USER_EXISTS = 46
    CREDS_MISMATCH = 47
    UNKNOWN_REQUEST_TYPE = 48
    NO_SUCH_FUNCTION = 51
    CFG = 59
    MISSING_REQUEST_FIELD = 69
    ITERATOR_TYPE = 72
    NO_CONNECTION = 77
    TIMEOUT = 78
    SESSION_CLOSED = 86
    UPDATE_INTEGER_OVERFLOW = 95
    GUEST_USER_PASSWORD = 96
    PROTOCOL = 104
    WRONG_SCHEMA_VERSION = 109
    SYSTEM = 115
    LOADING = 116
    NO_SUCH_INDEX_NAME = 148
    UPDATE_DECIMAL_OVERFLOW = 160
    NO_SUCH_FIELD_NAME = 201
    UNKNOWN_AUTH_METHOD = 249
    INVALID_AUTH_REQUEST = 251
    SHUTDOWN = 279
    CREATE_SPACE = 9
    SPACE_EXISTS = 10
    DROP_SPACE = 11
    ALTER_SPACE = 12
    INDEX_TYPE = 13
    MODIFY_INDEX = 14
    DROP_PRIMARY_KEY = 17
    FORMAT_MISMATCH_INDEX_PART = 27
    INDEX_PART_TYPE_MISMATCH = 24
    WRONG_INDEX_PARTS = 107
    WRONG_INDEX_OPTIONS = 108
    EXACT_FIELD_COUNT = 38
    MORE_THAN_ONE_TUPLE = 41
    UNKNOWN_SCHEMA_OBJECT = 49
    CREATE_FUNCTION = 50
    FUNCTION_EXISTS = 52
    NO_SUCH_ENGINE = 57
    IDENTIFIER = 70
    NO_SUCH_ROLE = 82
    ROLE_EXISTS = 83
    INDEX_EXISTS = 85
    GRANT = 88
    PRIV_GRANTED = 89
    ROLE_GRANTED = 90
    PRIV_NOT_GRANTED = 91
    ROLE_NOT_GRANTED = 92
    CANT_UPDATE_PRIMARY_KEY = 94
    UNSUPPORTED_INDEX_FEATURE = 112
    WRONG_SPACE_FORMAT = 141
    NO_SUCH_SEQUENCE = 145
    SPACE_FIELD_IS_DUPLICATE = 149
    NULLABLE_PRIMARY = 152
    ITERATOR_POSITION = 247
    UNSUPPORTED_PRIV = 98
    PARTIAL_KEY = 136
    ACTIVE_TRANSACTION = 79
    NO_TRANSACTION = 114
    TRANSACTION_CONFLICT = 97
    UNABLE_TO_PROCESS_IN_STREAM = 229
    UNABLE_TO_PROCESS_OUT_OF_STREAM = 230
    TRANSACTION_TIMEOUT = 231


# code -> (name, %-format). The format takes the positional args of BoxError.
MESSAGES: dict[int, tuple[str, str]] = {
    ER.UNKNOWN: ("ER_UNKNOWN", "Unknown error"),
    ER.ILLEGAL_PARAMS: ("ER_ILLEGAL_PARAMS", "Illegal parameters, %s"),  # 2.6's text
    ER.MEMORY_ISSUE: ("ER_MEMORY_ISSUE", "Failed to allocate %u bytes in %s for %s"),
    ER.TUPLE_FOUND: ("ER_TUPLE_FOUND", "Duplicate key exists in unique index '%s' in space '%s'"),
    ER.UNSUPPORTED: ("ER_UNSUPPORTED", "%s does not support %s"),
    ER.READONLY: ("ER_READONLY", "Can't modify data on a read-only instance"),
    ER.KEY_PART_TYPE: ("ER_KEY_PART_TYPE",
                       "Supplied key type of part %u does not match index part type: expected %s"),
    ER.EXACT_MATCH: ("ER_EXACT_MATCH", "Invalid key part count in an exact match (expected %u, got %u)"),
    ER.INVALID_MSGPACK: ("ER_INVALID_MSGPACK", "Invalid MsgPack - %s"),
    ER.TUPLE_NOT_ARRAY: ("ER_TUPLE_NOT_ARRAY", "Tuple/Key must be MsgPack array"),
    ER.FIELD_TYPE: ("ER_FIELD_TYPE",
                    "Tuple field %s type does not match one required by operation: expected %s"),
    ER.UPDATE_SPLICE: ("ER_UPDATE_SPLICE", "SPLICE error on field %s: %s"),
    ER.UPDATE_ARG_TYPE: ("ER_UPDATE_ARG_TYPE",
                         "Argument type in operation '%c' on field %s does not match field type: "
                         "expected %s"),
    ER.UNKNOWN_UPDATE_OP: ("ER_UNKNOWN_UPDATE_OP", "Unknown UPDATE operation #%d: %s"),
    ER.UPDATE_FIELD: ("ER_UPDATE_FIELD", "Field %s UPDATE error: %s"),
    ER.FUNCTION_TX_ACTIVE: ("ER_FUNCTION_TX_ACTIVE", "Transaction is active at return from function"),
    ER.WAL_IO: ("ER_WAL_IO", "Failed to write to disk"),
    ER.CASCADE_ROLLBACK: ("ER_CASCADE_ROLLBACK", "WAL has a rollback in progress"),
    ER.KEY_PART_COUNT: ("ER_KEY_PART_COUNT", "Invalid key part count (expected [0..%u], got %u)"),
    ER.PROC_LUA: ("ER_PROC_LUA", "%s"),
    ER.WRONG_INDEX_PARTS: ("ER_WRONG_INDEX_PARTS", "Wrong index parts: %s"),
    ER.WRONG_INDEX_OPTIONS: ("ER_WRONG_INDEX_OPTIONS", "Wrong index options (field %u): %s"),
    ER.INDEX_PART_TYPE_MISMATCH: ("ER_INDEX_PART_TYPE_MISMATCH",
                                  "Field %s has type '%s' in one index, but type '%s' in another"),
    ER.NO_SUCH_PROC: ("ER_NO_SUCH_PROC", "Procedure '%s' is not defined"),
    ER.NO_SUCH_INDEX_ID: ("ER_NO_SUCH_INDEX_ID", "No index #%u is defined in space '%s'"),
    ER.NO_SUCH_SPACE: ("ER_NO_SUCH_SPACE", "Space '%s' does not exist"),
    ER.NO_SUCH_FIELD_NO: ("ER_NO_SUCH_FIELD_NO", "Field %d was not found in the tuple"),
    ER.FIELD_MISSING: ("ER_FIELD_MISSING", "Tuple field %s required by space format is missing"),
    ER.ACCESS_DENIED: ("ER_ACCESS_DENIED", "%s access to %s '%s' is denied for user '%s'"),
    ER.CREATE_USER: ("ER_CREATE_USER", "Failed to create user '%s': %s"),
    ER.DROP_USER: ("ER_DROP_USER", "Failed to drop user or role '%s': %s"),
    ER.NO_SUCH_USER: ("ER_NO_SUCH_USER", "User '%s' is not found"),
    ER.USER_EXISTS: ("ER_USER_EXISTS", "User '%s' already exists"),
    ER.CREDS_MISMATCH: ("ER_CREDS_MISMATCH", "User not found or supplied credentials are invalid"),
    ER.UNKNOWN_REQUEST_TYPE: ("ER_UNKNOWN_REQUEST_TYPE", "Unknown request type %u"),
    ER.NO_SUCH_FUNCTION: ("ER_NO_SUCH_FUNCTION", "Function '%s' does not exist"),
    ER.CFG: ("ER_CFG", "Incorrect value for option '%s': %s"),
    ER.MISSING_REQUEST_FIELD: ("ER_MISSING_REQUEST_FIELD", "Missing mandatory field '%s' in request"),
    ER.ITERATOR_TYPE: ("ER_ITERATOR_TYPE", "Unknown iterator type '%s'"),
    ER.NO_CONNECTION: ("ER_NO_CONNECTION", "Connection is not established"),
    ER.TIMEOUT: ("ER_TIMEOUT", "Timeout exceeded"),
    ER.SESSION_CLOSED: ("ER_SESSION_CLOSED", "Session is closed"),
    ER.UPDATE_INTEGER_OVERFLOW: ("ER_UPDATE_INTEGER_OVERFLOW",
                                 "Integer overflow when performing '%c' operation on field %s"),
    ER.GUEST_USER_PASSWORD: ("ER_GUEST_USER_PASSWORD", "Setting password for guest user has no effect"),
    ER.PROTOCOL: ("ER_PROTOCOL", "%s"),
    ER.WRONG_SCHEMA_VERSION: ("ER_WRONG_SCHEMA_VERSION",
                              "Wrong schema version, current: %d, in request: %u"),
    ER.SYSTEM: ("ER_SYSTEM", "%s"),
    ER.LOADING: ("ER_LOADING", "Instance bootstrap hasn't finished yet"),
    ER.NO_SUCH_INDEX_NAME: ("ER_NO_SUCH_INDEX_NAME", "No index '%s' is defined in space '%s'"),
    ER.UPDATE_DECIMAL_OVERFLOW: ("ER_UPDATE_DECIMAL_OVERFLOW",
                                 "Decimal overflow when performing operation '%c' on field %s"),
    ER.NO_SUCH_FIELD_NAME: ("ER_NO_SUCH_FIELD_NAME", "Field '%s' was not found in the tuple"),
    ER.UNKNOWN_AUTH_METHOD: ("ER_UNKNOWN_AUTH_METHOD", "Unknown authentication method '%s'"),
    ER.INVALID_AUTH_REQUEST: ("ER_INVALID_AUTH_REQUEST", "Invalid '%s' request: %s"),
    ER.SHUTDOWN: ("ER_SHUTDOWN", "Server is shutting down"),
    ER.CREATE_SPACE: ("ER_CREATE_SPACE", "Failed to create space '%s': %s"),
    ER.SPACE_EXISTS: ("ER_SPACE_EXISTS", "Space '%s' already exists"),
    ER.DROP_SPACE: ("ER_DROP_SPACE", "Can't drop space '%s': %s"),
    ER.ALTER_SPACE: ("ER_ALTER_SPACE", "Can't modify space '%s': %s"),
    ER.INDEX_TYPE: ("ER_INDEX_TYPE", "Unsupported index type supplied for index '%s' in space '%s'"),
    ER.MODIFY_INDEX: ("ER_MODIFY_INDEX", "Can't create or modify index '%s' in space '%s': %s"),
    ER.DROP_PRIMARY_KEY: ("ER_DROP_PRIMARY_KEY", "Can't drop primary key in space '%s' while secondary keys exist"),
    ER.FORMAT_MISMATCH_INDEX_PART: ("ER_FORMAT_MISMATCH_INDEX_PART",
                                    "Field %s has type '%s' in space format, but type '%s' in index definition"),
    ER.EXACT_FIELD_COUNT: ("ER_EXACT_FIELD_COUNT", 'Tuple field count %u does not match space field count %u'),
    ER.MORE_THAN_ONE_TUPLE: ("ER_MORE_THAN_ONE_TUPLE", "Get() doesn't support partial keys and non-unique indexes"),
    ER.UNKNOWN_SCHEMA_OBJECT: ("ER_UNKNOWN_SCHEMA_OBJECT", "Unknown object type '%s'"),
    ER.CREATE_FUNCTION: ("ER_CREATE_FUNCTION", "Failed to create function '%s': %s"),
    ER.FUNCTION_EXISTS: ("ER_FUNCTION_EXISTS", "Function '%s' already exists"),
    ER.NO_SUCH_ENGINE: ("ER_NO_SUCH_ENGINE", "Space engine '%s' does not exist"),
    ER.IDENTIFIER: ("ER_IDENTIFIER", "Invalid identifier '%s' (expected printable symbols only or it is too long)"),
    ER.NO_SUCH_ROLE: ("ER_NO_SUCH_ROLE", "Role '%s' is not found"),
    ER.ROLE_EXISTS: ("ER_ROLE_EXISTS", "Role '%s' already exists"),
    ER.INDEX_EXISTS: ("ER_INDEX_EXISTS", "Index '%s' already exists"),
    ER.GRANT: ("ER_GRANT", 'Incorrect grant arguments: %s'),
    ER.PRIV_GRANTED: ("ER_PRIV_GRANTED", "User '%s' already has %s access on %s '%s'"),
    ER.ROLE_GRANTED: ("ER_ROLE_GRANTED", "User '%s' already has role '%s'"),
    ER.PRIV_NOT_GRANTED: ("ER_PRIV_NOT_GRANTED", "User '%s' does not have %s access on %s '%s'"),
    ER.ROLE_NOT_GRANTED: ("ER_ROLE_NOT_GRANTED", "User '%s' does not have role '%s'"),
    ER.CANT_UPDATE_PRIMARY_KEY: ("ER_CANT_UPDATE_PRIMARY_KEY",
                                 "Attempt to modify a tuple field which is part of index '%s' in space '%s'"),
    ER.UNSUPPORTED_INDEX_FEATURE: ("ER_UNSUPPORTED_INDEX_FEATURE",
                                   "Index '%s' (%s) of space '%s' (%s) does not support %s"),
    ER.WRONG_SPACE_FORMAT: ("ER_WRONG_SPACE_FORMAT", 'Wrong space format field %u: %s'),
    ER.NO_SUCH_SEQUENCE: ("ER_NO_SUCH_SEQUENCE", "Sequence '%s' does not exist"),
    ER.SPACE_FIELD_IS_DUPLICATE: ("ER_SPACE_FIELD_IS_DUPLICATE", "Space field '%s' is duplicate"),
    ER.NULLABLE_PRIMARY: ("ER_NULLABLE_PRIMARY", "Primary index of space '%s' can not contain nullable parts"),
    ER.ITERATOR_POSITION: ("ER_ITERATOR_POSITION", 'Iterator position is invalid'),
    ER.UNSUPPORTED_PRIV: ("ER_UNSUPPORTED_PRIV", "Unsupported %s privilege '%s'"),
    ER.PARTIAL_KEY: ("ER_PARTIAL_KEY", "%s index  does not support selects via a partial key "
                     "(expected %u parts, got %u). Please Consider changing index type to TREE."),
    ER.ACTIVE_TRANSACTION: ("ER_ACTIVE_TRANSACTION",
                            "Operation is not permitted when there is an active transaction "),
    ER.NO_TRANSACTION: ("ER_NO_TRANSACTION", "No active transaction"),
    ER.TRANSACTION_CONFLICT: ("ER_TRANSACTION_CONFLICT", "Transaction has been aborted by conflict"),
    ER.UNABLE_TO_PROCESS_IN_STREAM: ("ER_UNABLE_TO_PROCESS_IN_STREAM",
                                     "Unable to process %s request in stream"),
    ER.UNABLE_TO_PROCESS_OUT_OF_STREAM: ("ER_UNABLE_TO_PROCESS_OUT_OF_STREAM",
                                         "Unable to process %s request out of stream"),
    ER.TRANSACTION_TIMEOUT: ("ER_TRANSACTION_TIMEOUT", "Transaction has been aborted by timeout"),
}


# Error types clients know by name (Tarantool's error classes).
TARANTOOL_ERROR_TYPES = frozenset({
    "ClientError", "CustomError", "AccessDeniedError", "OutOfMemory", "SystemError",
    "SocketError", "TimedOut", "LuajitError", "IllegalParams", "XlogError", "XlogGapError",
    "FiberIsCancelled", "CollationError", "SwimError", "CryptoError", "RaftError",
    "ChannelIsClosed", "UnsupportedIndexFeature",
})


class BoxError(Exception):
    """A Tarantool error. `BoxError(ER.NO_SUCH_PROC, "f")` formats Tarantool's message.

    `message=` overrides the formatted text (as `box.error{reason=...}` does);
    `type_name=` sets the error type ("ClientError" unless told otherwise).
    """

    def __init__(
        self,
        code: int,
        *args: Any,
        message: str | None = None,
        type_name: str = "ClientError",
        fields: dict[str, Any] | None = None,
        file: str | None = None,
        line: int | None = None,
        errno: int = 0,
    ) -> None:
        if message is None:
            fmt = MESSAGES.get(code, ("", "Unknown error"))[1]
            try:
                message = fmt.replace("%u", "%d") % args if args else fmt
            except TypeError:
                message = fmt
        super().__init__(message)
        self.code = code
        self.message = message
        self.type_name = type_name
        self.fields = fields
        self.errno = errno
        if file is None:
            # Where it was raised from: the caller's file and line.
            frame = sys._getframe(1)
            file, line = frame.f_code.co_filename, frame.f_lineno
        self.file = file
        self.line = line or 0

    def __repr__(self) -> str:
        return f"BoxError({self.code}, {self.message!r})"

    def error_map(self) -> dict[int, Any]:
        """One entry of the MP_ERROR stack, keys in Tarantool's order.

        A type Tarantool does not define travels as Tarantool sends
        `box.error.new{type = ...}`: type "CustomError" with the name in the
        `custom_type` field, so every client rebuilds it with its code.
        """
        type_name, fields = self.type_name, self.fields
        if type_name not in TARANTOOL_ERROR_TYPES:
            fields = {"custom_type": type_name, **(fields or {})}
            type_name = "CustomError"
        m: dict[int, Any] = {
            C.ERROR_TYPE: type_name,
            C.ERROR_LINE: self.line,
            C.ERROR_FILE: self.file,
            C.ERROR_MESSAGE: self.message,
            C.ERROR_ERRNO: self.errno,
            C.ERROR_CODE: self.code,
        }
        if fields:
            m[C.ERROR_FIELDS] = fields
        return m

    def set_prev(self, prev: BaseException | None) -> None:
        """Lua's e:set_prev(prev): `prev` comes next in the MP_ERROR stack."""
        self.__cause__ = prev

    @property
    def prev(self) -> BaseException | None:
        return self.__cause__

    def stack(self) -> list[dict[int, Any]]:
        """This error and then its causes (`raise ... from cause`)."""
        out = [self.error_map()]
        cause = self.__cause__
        seen = {id(self)}
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            out.append(error_from_exception(cause).error_map())
            cause = cause.__cause__
        return out


def error_from_exception(exc: BaseException) -> BoxError:
    """What a Python exception raised by app code looks like to a client.

    A BoxError goes as is. Anything else becomes ER_PROC_LUA (32), the code
    Tarantool uses for an error raised inside a stored procedure, with the
    exception's class name as its type (sent as a CustomError, see
    `error_map`) and the message "<ExceptionType>: <text>", located at the
    innermost frame of the traceback.
    """
    if isinstance(exc, BoxError):
        return exc
    tb = exc.__traceback__
    file, line = "", 0
    while tb is not None:
        file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    err = BoxError(ER.PROC_LUA, message=message, type_name=type(exc).__name__, file=file, line=line)
    err.__cause__ = exc.__cause__
    return err


def encode_error_body(err: BoxError, packb: Any) -> bytes:
    """The body of an error reply: {ERROR_24: message, ERROR: {STACK: [...]}}."""
    return packb({C.ERROR_24: err.message, C.ERROR: {C.ERROR_STACK: err.stack()}})

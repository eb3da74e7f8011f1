"""Exceptions: one class per error code of the protocol (PROTOCOL.md §6), and
a few for what happens on this side of the socket.

    HitldError                      every exception this package raises
    ├── RpcError                    the daemon answered the call with an error
    │   ├── ParseError              -32700
    │   ├── InvalidRequest          -32600 (also: a line over the daemon's size limit)
    │   ├── MethodNotFound          -32601
    │   ├── InvalidParams           -32602 data: {"field", "reason"}
    │   ├── InternalError           -32603
    │   ├── NotFound                -32001
    │   ├── PermissionDenied        -32002
    │   ├── QuotaExceeded           -32003 data: {"limit"}
    │   ├── BudgetExhausted         -32004 data: {"retry_at"}
    │   ├── StorageError            -32005
    │   ├── RemoteError             -32006 data: {"http_status", "msg", "data"}
    │   ├── InvalidState            -32007
    │   ├── ShuttingDown            -32008
    │   ├── Conflict                -32009
    │   └── Unavailable             -32010 data: sometimes {"key", "msg"}
    ├── HitldConnectionError        (also a builtin ConnectionError) the socket
    │   ├── DaemonNotRunning        no socket there, or nothing behind it
    │   ├── SocketAccessDenied      not allowed to open the socket (group hitl)
    │   └── ConnectionClosed        the daemon closed the connection, or it broke
    ├── ProtocolError               the daemon sent something that is not JSON-RPC
    │   └── MessageTooLarge         a line over the size bound (either direction)
    ├── Timeout                     (also a builtin TimeoutError) a call took too long
    │   └── WaitTimeout             wait_final()/ask(): not final in time; .record
    ├── WatchOverflow               the watcher fell behind; reconnect and re-read
    └── RequestFailed               ask()/wait_final(): ended failed or cancelled; .record

An error code this package does not know (a newer daemon) is an RpcError
with that code. Every class has `code` (the JSON-RPC code, None for local
errors), `message` (the daemon's sentence, or ours) and `data` (the error's
`data` member as the daemon sent it, or None).
"""
from __future__ import annotations

import errno as _errno
from typing import Any, Dict, Mapping, Optional, Type

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32001
PERMISSION_DENIED = -32002
QUOTA_EXCEEDED = -32003
BUDGET_EXHAUSTED = -32004
STORAGE_ERROR = -32005
REMOTE_ERROR = -32006
INVALID_STATE = -32007
SHUTTING_DOWN = -32008
CONFLICT = -32009
UNAVAILABLE = -32010


class HitldError(Exception):
    """Base of every exception raised by this package."""

    code: Optional[int] = None
    name: Optional[str] = None

    def __init__(self, message: str, data: Any = None, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        s = self.message
        if self.code is not None:
            s = "%s (%d %s)" % (s, self.code, self.name or "error")
        if self.data is not None:
            s += " %r" % (self.data,)
        return s


class RpcError(HitldError):
    """The daemon answered a call with a JSON-RPC error."""


class ParseError(RpcError):
    code, name = PARSE_ERROR, "parse_error"


class InvalidRequest(RpcError):
    code, name = INVALID_REQUEST, "invalid_request"


class MethodNotFound(RpcError):
    code, name = METHOD_NOT_FOUND, "method_not_found"


class InvalidParams(RpcError):
    code, name = INVALID_PARAMS, "invalid_params"

    @property
    def field(self) -> Optional[str]:
        """The parameter the daemon refused (a path such as
        "response_config.options[2].value"), if it said."""
        return self.data.get("field") if isinstance(self.data, dict) else None

    @property
    def reason(self) -> Optional[str]:
        return self.data.get("reason") if isinstance(self.data, dict) else None


class InternalError(RpcError):
    code, name = INTERNAL_ERROR, "internal_error"


class NotFound(RpcError):
    code, name = NOT_FOUND, "not_found"


class PermissionDenied(RpcError):
    code, name = PERMISSION_DENIED, "permission_denied"


class QuotaExceeded(RpcError):
    code, name = QUOTA_EXCEEDED, "quota_exceeded"


class BudgetExhausted(RpcError):
    code, name = BUDGET_EXHAUSTED, "budget_exhausted"

    @property
    def retry_at(self) -> Optional[str]:
        return self.data.get("retry_at") if isinstance(self.data, dict) else None


class StorageError(RpcError):
    code, name = STORAGE_ERROR, "storage_error"


class RemoteError(RpcError):
    code, name = REMOTE_ERROR, "remote_error"

    @property
    def http_status(self) -> Optional[int]:
        return self.data.get("http_status") if isinstance(self.data, dict) else None


class InvalidState(RpcError):
    code, name = INVALID_STATE, "invalid_state"


class ShuttingDown(RpcError):
    code, name = SHUTTING_DOWN, "shutting_down"


class Conflict(RpcError):
    code, name = CONFLICT, "conflict"


class Unavailable(RpcError):
    code, name = UNAVAILABLE, "unavailable"


_BY_CODE: Dict[int, Type[RpcError]] = {
    cls.code: cls for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
                              NotFound, PermissionDenied, QuotaExceeded, BudgetExhausted, StorageError,
                              RemoteError, InvalidState, ShuttingDown, Conflict, Unavailable)
    if cls.code is not None
}


def error_class(code: int) -> Type[RpcError]:
    """The exception class for a JSON-RPC error code (RpcError if unknown)."""
    return _BY_CODE.get(code, RpcError)


def error_from_object(error: Any) -> RpcError:
    """The exception for a reply's "error" member."""
    if not isinstance(error, Mapping) or not isinstance(error.get("code"), int) \
            or isinstance(error.get("code"), bool):
        raise ProtocolError("malformed error object in a reply: %r" % (error,))
    code = error["code"]
    message = error.get("message")
    if not isinstance(message, str):
        message = "Error %d." % code
    return error_class(code)(message, error.get("data"), code)


class HitldConnectionError(HitldError, ConnectionError):
    """The socket could not be opened or the connection broke. `errno` is
    the system's error number when there is one."""

    def __init__(self, message: str, errno: Optional[int] = None, path: Optional[str] = None) -> None:
        HitldError.__init__(self, message)
        self.errno = errno  # type: ignore[assignment]  # OSError's is Optional at run time too
        self.path = path
        self.strerror = message

    def __str__(self) -> str:
        return self.message


class DaemonNotRunning(HitldConnectionError):
    """No socket at the path (ENOENT), or a socket with no daemon behind it
    (ECONNREFUSED)."""


class SocketAccessDenied(HitldConnectionError):
    """Not allowed to open the socket (EACCES): join the socket's group."""


class ConnectionClosed(HitldConnectionError):
    """The daemon closed the connection (it stopped, restarted, or dropped a
    watcher that fell behind), or an earlier error made it unusable."""

    def __init__(self, message: str = "hitld closed the connection.", errno: Optional[int] = _errno.ECONNRESET,
                 path: Optional[str] = None) -> None:
        super().__init__(message, errno, path)


class ProtocolError(HitldError):
    """The daemon sent something that is not a JSON-RPC 2.0 message; the
    connection cannot be used any more."""


class MessageTooLarge(ProtocolError):
    """A line longer than the bound: from the daemon (the connection is then
    unusable), or a request this client refused to send (nothing was sent)."""


class Timeout(HitldError, TimeoutError):
    """A call did not finish in time. The connection stays usable: the late
    reply is recognised by its id and skipped."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message, data)
        self.errno = _errno.ETIMEDOUT


class WaitTimeout(Timeout):
    """wait_final() or ask() gave up before the request was final. The
    request is safe at hitld: wait for it again by `request_id`. `record` is
    the last record seen."""

    def __init__(self, message: str, record: Dict[str, Any]) -> None:
        super().__init__(message, record)
        self.record = record
        self.request_id: Optional[str] = record.get("id")


class WatchOverflow(HitldError):
    """The watcher fell more than 1000 notifications behind and the daemon
    disconnected it: reconnect, watch again and re-read with list()."""


class RequestFailed(HitldError):
    """ask() or wait_final(): the request ended without an answer to act on
    (state "failed" or "cancelled"). `record` is the final record; for
    "failed" its "error" member says why."""

    def __init__(self, record: Dict[str, Any]) -> None:
        state = record.get("state")
        err = record.get("error")
        if state == "failed" and isinstance(err, dict) and err.get("message"):
            message = "The request failed: %s" % err["message"]
        else:
            message = "The request ended %s." % state
        super().__init__(message, record)
        self.record = record
        self.state: Optional[str] = state
        self.request_id: Optional[str] = record.get("id")

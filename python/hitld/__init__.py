"""hitld: a Python client for hitld's control socket (docs/PROTOCOL.md).

    import hitld

    with hitld.Client() as c:               # $HITLD_SOCKET or /run/hitld.sock
        answer = c.ask(loop_id="65f1234567890abcdef12345",
                       request_text="Deploy build 4812 to production?",
                       response_type="single_select",
                       response_config={"options": ["approve", "reject"]},
                       default_response="reject",
                       processing_type="time-sensitive", timeout_seconds=900,
                       client_ref="deploy-4812")
        print(answer.result, answer.source)  # "approve" "reviewer"

Standard library only. Client blocks; AsyncClient (hitld.aio) is the same
for asyncio. Errors are HitldError subclasses (hitld.errors).
"""
from ._common import (CALL_TIMEOUT_DEFAULT, FINAL_STATES, MESSAGE_MAX_DEFAULT, METHOD_NAMES, PROTOCOL_VERSION,
                      SOCKET_DEFAULT, SOCKET_ENV, Answer, Event, __version__, instance_socket_path, socket_path)
from .aio import AsyncClient, AsyncWatch
from .client import Client, Watch, connect
from .errors import (BudgetExhausted, Conflict, ConnectionClosed, DaemonNotRunning, HitldConnectionError,
                     HitldError, InternalError, InvalidParams, InvalidRequest, InvalidState, MessageTooLarge,
                     MethodNotFound, NotFound, ParseError, PermissionDenied, ProtocolError, QuotaExceeded,
                     RemoteError, RequestFailed, RpcError, ShuttingDown, SocketAccessDenied, StorageError, Timeout,
                     Unavailable, WaitTimeout, WatchOverflow, error_class)

__all__ = [
    "Answer", "AsyncClient", "AsyncWatch", "BudgetExhausted", "CALL_TIMEOUT_DEFAULT", "Client", "Conflict",
    "ConnectionClosed", "DaemonNotRunning", "Event", "FINAL_STATES", "HitldConnectionError", "HitldError",
    "InternalError", "InvalidParams", "InvalidRequest", "InvalidState", "MESSAGE_MAX_DEFAULT", "METHOD_NAMES",
    "MessageTooLarge", "MethodNotFound", "NotFound", "PROTOCOL_VERSION", "ParseError", "PermissionDenied",
    "ProtocolError", "QuotaExceeded", "RemoteError", "RequestFailed", "RpcError", "SOCKET_DEFAULT", "SOCKET_ENV",
    "ShuttingDown", "SocketAccessDenied", "StorageError", "Timeout", "Unavailable", "WaitTimeout", "Watch",
    "WatchOverflow", "__version__", "connect", "error_class", "instance_socket_path", "socket_path",
]

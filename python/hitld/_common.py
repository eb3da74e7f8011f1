"""What the blocking and the asyncio client share: where the socket is, how a
message is framed, and the parameters of each method.

Each protocol method is one method of _Methods, written once: it builds the
params and hands them to the subclass's _call(), which returns the result
(Client) or an awaitable of it (AsyncClient).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Generic, Iterable, List, Mapping, NamedTuple, Optional, TypeVar, Union

from .errors import MessageTooLarge, ProtocolError, RequestFailed

__version__ = "0.1.0"

PROTOCOL_VERSION = 1
SOCKET_DEFAULT = "/run/hitld.sock"
SOCKET_ENV = "HITLD_SOCKET"
INSTANCE_SOCKET_FORMAT = "/run/hitld-%s.sock"
INSTANCE_NAME_MAX = 64
# The protocol's default maximum message (socket.max_message_bytes): the
# longest line read from the daemon, and the longest request sent.
MESSAGE_MAX_DEFAULT = 1024 * 1024
# Seconds one call may take (request.wait and waiting triggers add their own
# timeout_ms on top), as libhitlclient's HITL_CALL_TIMEOUT_MS_DEFAULT.
CALL_TIMEOUT_DEFAULT = 120.0
# Notifications kept while the caller is not reading them; past this they are
# dropped and the watch ends with WatchOverflow, as the daemon does.
EVENT_QUEUE_MAX = 1000
# How long wait_final() and ask() keep reconnecting while hitld is away
# (restarting, upgraded): a request is durable, so its wait can go on.
RECONNECT_DEFAULT = 60.0
WAIT_TIMEOUT_MS_DEFAULT = 30000
WAIT_TIMEOUT_MS_MAX = 3600000

FINAL_STATES = frozenset(("completed", "timeout", "cancelled", "failed"))
# Final states with no answer to act on: ask() raises RequestFailed.
UNANSWERED_STATES = frozenset(("cancelled", "failed"))

CLIENT_NAME = "hitld-python/" + __version__

_INSTANCE_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,%d}\Z" % INSTANCE_NAME_MAX)

PathLike = Union[str, "os.PathLike[str]"]
Params = Mapping[str, Any]
Record = Dict[str, Any]


def instance_socket_path(name: str) -> str:
    """"/run/hitld-NAME.sock", the socket of hitld@NAME.service. NAME is
    1-64 of [A-Za-z0-9_.:@-] and does not start with '.' (ValueError)."""
    if not isinstance(name, str) or not _INSTANCE_RE.match(name) or name.startswith("."):
        raise ValueError("an instance name is 1-%d characters of letters, digits and _.:@- "
                         "(e.g. 'prod' for hitld@prod.service): %r" % (INSTANCE_NAME_MAX, name))
    return INSTANCE_SOCKET_FORMAT % name


def socket_path(socket: Optional[PathLike] = None, instance: Optional[str] = None) -> str:
    """The socket a client uses, in hitlctl's order: an explicit path, else
    an instance name, else $HITLD_SOCKET (when set and not empty), else
    /run/hitld.sock."""
    if socket is not None and os.fspath(socket) != "":
        return os.fspath(socket)
    if instance is not None:
        return instance_socket_path(instance)
    env = os.environ.get(SOCKET_ENV)
    if env:
        return env
    return SOCKET_DEFAULT


def not_running_hint(path: str, instance: Optional[str]) -> str:
    if instance is not None and path == instance_socket_path(instance):
        return "Start it with 'systemctl start hitld@%s.socket'" % instance
    return "Start it with 'systemctl start hitld.socket', or set HITLD_SOCKET"


def encode_request(rid: int, method: str, params: Params, max_message: int) -> bytes:
    """One request line. MessageTooLarge (nothing sent) past max_message;
    TypeError/ValueError for params that are not JSON (NaN included)."""
    msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    line = json.dumps(msg, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(line) > max_message:
        raise MessageTooLarge("the %s request is %d bytes, over the %d-byte message limit; nothing was sent"
                              % (method, len(line), max_message))
    return line + b"\n"


def decode_message(line: bytes) -> Dict[str, Any]:
    """A line from the daemon as a JSON-RPC 2.0 object (ProtocolError if not)."""
    try:
        msg = json.loads(line)
    except ValueError as e:  # includes UnicodeDecodeError
        raise ProtocolError("hitld sent a line that is not JSON: %s" % e) from None
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        raise ProtocolError("hitld sent something that is not JSON-RPC 2.0: %.200r" % (line,))
    if "id" not in msg and not isinstance(msg.get("method"), str):
        raise ProtocolError("hitld sent a message with neither an id nor a method: %.200r" % (line,))
    return msg


def merge(base: Optional[Params], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """The params of a call: base (kept as given, None values included), then
    the keyword arguments that are not None."""
    out: Dict[str, Any] = dict(base) if base is not None else {}
    for k, v in extra.items():
        if v is not None:
            out[k] = v
    return out


class Event(NamedTuple):
    """One notification on a watching connection."""
    method: str
    """"request.changed" (or a newer daemon's notification name)."""
    params: Dict[str, Any]
    """The notification's params as received."""

    @property
    def request(self) -> Optional[Record]:
        """The record of a "request.changed", else None."""
        r = self.params.get("request")
        return r if isinstance(r, dict) else None


def event_from_message(msg: Mapping[str, Any]) -> Event:
    params = msg.get("params")
    return Event(str(msg["method"]), params if isinstance(params, dict) else {})


class Answer(NamedTuple):
    """What ask() returns: the answer to act on, and the final record.
    Unpacks as a pair: `result, record = client.ask(...)`."""
    result: Any
    """The record's "result": the option value, values, number or text; on
    "timeout" the default_response."""
    record: Record

    @property
    def source(self) -> Optional[str]:
        """"reviewer", "default" (nobody answered in time), or what a newer
        daemon says (e.g. "unsent")."""
        return self.record.get("result_source")

    @property
    def state(self) -> str:
        return str(self.record.get("state"))

    @property
    def request_id(self) -> str:
        return str(self.record.get("id"))


def answer_of(record: Record) -> Answer:
    """The Answer of a final record, or RequestFailed for one that ended
    without an answer to act on."""
    if record.get("state") in UNANSWERED_STATES:
        raise RequestFailed(record)
    return Answer(record.get("result"), record)


def wait_chunk_ms(remaining: Optional[float]) -> int:
    """timeout_ms for the next request.wait of a longer wait."""
    if remaining is None:
        return WAIT_TIMEOUT_MS_MAX
    return max(0, min(WAIT_TIMEOUT_MS_MAX, int(remaining * 1000)))


class Outage:
    """When a waiter whose daemon went away tries again, and when it gives
    up: after `limit` seconds without a connection, or at the waiter's own
    deadline `end` (monotonic; None: none)."""

    def __init__(self, limit: Optional[float], end: Optional[float]) -> None:
        self.limit = limit or 0.0
        self.end = end
        self.since: Optional[float] = None
        self.delay = 0.1

    def next_try(self, now: float) -> Optional[float]:
        """Seconds to sleep before reconnecting, or None: give up."""
        if self.since is None:
            self.since = now
        if self.limit <= 0 or now - self.since >= self.limit or (self.end is not None and now >= self.end):
            return None
        delay = min(self.delay, self.since + self.limit - now)
        if self.end is not None:
            delay = min(delay, self.end - now)
        self.delay = min(self.delay * 2, 2.0)
        return max(delay, 0.0)

    def over(self) -> None:
        self.since = None
        self.delay = 0.1


R = TypeVar("R")


class _Methods(Generic[R]):
    """One Python method per protocol method. Keyword arguments that are not
    None are sent as params unchanged, so fields this package does not know
    (a newer daemon's) pass through; a mapping argument is sent as given."""

    def _call(self, method: str, params: Dict[str, Any], extra_timeout: float = 0.0) -> R:
        raise NotImplementedError

    def call(self, method: str, params: Optional[Params] = None, **kwargs: Any) -> R:
        """Calls any method by its protocol name ("request.get", …) and
        returns its result; raises the RpcError subclass of the error."""
        return self._call(method, merge(params, kwargs))

    # -- hello, status
    def hello(self, client: Optional[str] = CLIENT_NAME, protocol: Optional[int] = PROTOCOL_VERSION,
              **params: Any) -> R:
        """hello → {protocol, daemon, version, uid, admin}."""
        return self._call("hello", merge(None, dict(params, client=client, protocol=protocol)))

    def status(self, **params: Any) -> R:
        """status → {version, started_at, uptime_s, budget, queue, forecast, api, key, paused}."""
        return self._call("status", merge(None, params))

    def usage(self, since: Optional[str] = None, by: Optional[str] = None, **params: Any) -> R:
        """usage → {since, until, by, scope, rows: [{kind|uid|loop_id|hour,
        calls, outcomes, decisions, defaults}…], total, …}: where the API
        calls went since "1h", "24h" (default), "7d", "30d"; by "kind"
        (default), "uid", "loop" or "hour". A non-admin sees its own calls."""
        return self._call("usage", merge(None, dict(params, since=since, by=by)))

    def metrics(self, **params: Any) -> R:
        """metrics → {content_type, text}: hitld's figures in the Prometheus
        text exposition format (hitld(8) METRICS); a non-admin gets the
        budget and its own requests."""
        return self._call("metrics", merge(None, params))

    # -- requests
    def submit(self, request: Optional[Params] = None, **fields: Any) -> R:
        """request.submit: the create-request fields (a mapping, keyword
        arguments, or both) plus an optional client_ref →
        {id, state, created_at, position, duplicate}."""
        return self._call("request.submit", merge(request, fields))

    def get(self, request_id: Optional[str] = None, *, client_ref: Optional[str] = None, **params: Any) -> R:
        """request.get by id, or by your client_ref → the record."""
        return self._call("request.get", merge(None, dict(params, id=request_id, client_ref=client_ref)))

    def wait(self, request_id: str, timeout_ms: int = WAIT_TIMEOUT_MS_DEFAULT, **params: Any) -> R:
        """request.wait → {"request": record, "done": bool}: answers once the
        request is final or timeout_ms (0-3600000) passed."""
        extra = timeout_ms / 1000.0 if isinstance(timeout_ms, (int, float)) and timeout_ms > 0 else 0.0
        return self._call("request.wait", merge(None, dict(params, id=request_id, timeout_ms=timeout_ms)), extra)

    def list(self, state: Union[str, Iterable[str], None] = None, *, loop_id: Optional[str] = None,
             owner_uid: Optional[int] = None, limit: Optional[int] = None, cursor: Optional[str] = None,
             **params: Any) -> R:
        """request.list → {"requests": [record…], "next_cursor": str | None},
        newest first. state: one state or several."""
        if state is not None and not isinstance(state, str):
            state = [str(s) for s in state]
        return self._call("request.list", merge(None, dict(params, state=state, loop_id=loop_id,
                                                               owner_uid=owner_uid, limit=limit, cursor=cursor)))

    def cancel(self, request_id: str, **params: Any) -> R:
        """request.cancel → the record ("cancelled", or cancel_requested)."""
        return self._call("request.cancel", merge(None, dict(params, id=request_id)))

    def feedback(self, request_id: str, feedback: Optional[Params] = None, **fields: Any) -> R:
        """request.feedback: feedback as a mapping or keyword arguments
        (rating=5, comment="…") → the record (feedback_state "queued")."""
        return self._call("request.feedback", {"id": request_id, "feedback": merge(feedback, fields)})

    # -- loops (these may call HITL.sh and cost budget)
    def loop_list(self, **params: Any) -> R:
        """loop.list → {"loops": […], "count": n, "cached": bool, …}."""
        return self._call("loop.list", merge(None, params))

    def loop_get(self, loop_id: str, **params: Any) -> R:
        """loop.get → {"loop": {…}, "cached": bool, …}."""
        return self._call("loop.get", merge(None, dict(params, id=loop_id)))

    def loop_members(self, loop_id: str, **params: Any) -> R:
        """loop.members → {"members": […], "total_count", "active_count", …}."""
        return self._call("loop.members", merge(None, dict(params, id=loop_id)))

    def loop_create(self, name: str, icon: str, description: Optional[str] = None, **params: Any) -> R:
        """loop.create → {"loop", "invite_code", "join_url", …}."""
        return self._call("loop.create", merge(None, dict(params, name=name, icon=icon, description=description)))

    def loop_update(self, loop_id: str, *, name: Optional[str] = None, description: Optional[str] = None,
                    icon: Optional[str] = None, **params: Any) -> R:
        """loop.update (at least one of name, description, icon) → {"loop"}."""
        return self._call("loop.update", merge(None, dict(params, id=loop_id, name=name,
                                                              description=description, icon=icon)))

    def loop_delete(self, loop_id: str, **params: Any) -> R:
        """loop.delete → {"loop_id", "deleted_at", …}; deletes the loop's
        requests at HITL.sh too."""
        return self._call("loop.delete", merge(None, dict(params, id=loop_id)))

    def loop_remove_member(self, loop_id: str, user_id: str, **params: Any) -> R:
        """loop.remove_member → {"loop_id", "user_id", "removed_at"}."""
        return self._call("loop.remove_member", merge(None, dict(params, id=loop_id, user_id=user_id)))

    # -- workflows
    def trigger(self, workflow_id: str, data: Optional[Params] = None, *, priority: Optional[str] = None,
                client_ref: Optional[str] = None, wait: Optional[bool] = None, timeout_ms: Optional[int] = None,
                **params: Any) -> R:
        """workflow.trigger: queues a trigger of the workflow ("wf_…") with
        data (the JSON body it gets) → {kind, id, state, created_at,
        position, duplicate}; with wait=True, request.wait's result on the
        trigger's record once it is final or timeout_ms passed."""
        extra = 0.0
        if isinstance(timeout_ms, (int, float)) and timeout_ms > 0:
            extra = timeout_ms / 1000.0
        elif wait:
            extra = WAIT_TIMEOUT_MS_DEFAULT / 1000.0
        return self._call("workflow.trigger", merge(None, dict(params, workflow_id=workflow_id, data=data,
                                                                   priority=priority, client_ref=client_ref,
                                                                   wait=wait, timeout_ms=timeout_ms)), extra)

    # -- admin methods
    def key_test(self, **params: Any) -> R:
        """key.test (admin; costs budget) → HITL.sh's /v1/test data."""
        return self._call("key.test", merge(None, params))

    def key_rotate(self, **params: Any) -> R:
        """key.rotate (admin) → {"switched": true, "api_key_id"}: hitld tests its
        standby key and switches to it; InvalidState when there is none or
        HITL.sh refuses it (the current key stays)."""
        return self._call("key.rotate", merge(None, params))

    def pause(self, **params: Any) -> R:
        """queue.pause (admin) → {"paused": true}."""
        return self._call("queue.pause", merge(None, params))

    def resume(self, **params: Any) -> R:
        """queue.resume (admin) → {"paused": false}."""
        return self._call("queue.resume", merge(None, params))

    def reload(self, **params: Any) -> R:
        """daemon.reload (admin; like SIGHUP) → {"reloaded": true, …}."""
        return self._call("daemon.reload", merge(None, params))


METHOD_NAMES: Dict[str, str] = {
    "hello": "hello", "status": "status", "usage": "usage", "metrics": "metrics",
    "request.submit": "submit", "request.get": "get",
    "request.wait": "wait", "request.list": "list", "request.cancel": "cancel",
    "request.feedback": "feedback", "watch": "watch", "loop.list": "loop_list", "loop.get": "loop_get",
    "loop.members": "loop_members", "loop.create": "loop_create", "loop.update": "loop_update",
    "loop.delete": "loop_delete", "loop.remove_member": "loop_remove_member",
    "workflow.trigger": "trigger", "key.test": "key_test", "key.rotate": "key_rotate", "queue.pause": "pause",
    "queue.resume": "resume", "daemon.reload": "reload",
}
"""Protocol method → Python method of Client and AsyncClient."""


def watch_params(ids: Optional[Iterable[str]], params: Mapping[str, Any]) -> Dict[str, Any]:
    ids_list: Optional[List[str]] = None if ids is None else [str(i) for i in ids]
    return merge(None, dict(params, ids=ids_list))

"""The blocking client: one Client owns one connection to hitld's socket.

Calls block until the daemon answers or the client's timeout passes. Not
thread-safe: use one Client per thread (connections are cheap; hitld allows
32 per uid by default).
"""
from __future__ import annotations

import collections
import errno
import socket as _socket
import time
from typing import Any, Deque, Dict, Iterable, Iterator, Optional, Set, cast

from ._common import (CALL_TIMEOUT_DEFAULT, EVENT_QUEUE_MAX, MESSAGE_MAX_DEFAULT, RECONNECT_DEFAULT, Answer, Event,
                      Outage, PathLike, Record, _Methods, answer_of, decode_message, encode_request, event_from_message, merge,
                      not_running_hint, socket_path, wait_chunk_ms, watch_params)
from .errors import (ConnectionClosed, DaemonNotRunning, HitldConnectionError, HitldError, MessageTooLarge,
                     ProtocolError, ShuttingDown, SocketAccessDenied, Timeout, WaitTimeout, WatchOverflow,
                     error_from_object)

_OVERFLOW = "watch.overflow"


def connect_error(e: OSError, path: str, instance: Optional[str]) -> HitldConnectionError:
    """The exception for a failed connect(2), worded as hitlctl words it."""
    if e.errno == errno.ENOENT:
        return DaemonNotRunning("cannot connect to %s: no such socket — is hitld running? %s."
                                % (path, not_running_hint(path, instance)), e.errno, path)
    if e.errno == errno.ECONNREFUSED:
        return DaemonNotRunning("cannot connect to %s: nothing is listening — hitld is not running "
                                "(systemctl status hitld)." % path, e.errno, path)
    if e.errno in (errno.EACCES, errno.EPERM):
        return SocketAccessDenied("cannot connect to %s: permission denied — join the socket's group "
                                  "(usually hitl: sudo usermod -aG hitl $USER, then log in again)." % path,
                                  e.errno, path)
    return HitldConnectionError("cannot connect to %s: %s" % (path, e.strerror or e), e.errno, path)


class Client(_Methods[Dict[str, Any]]):
    """A connection to hitld.

    socket: the socket's path; else instance NAME (/run/hitld-NAME.sock);
    else $HITLD_SOCKET; else /run/hitld.sock. timeout: seconds one call may
    take (None: no limit); request.wait adds its timeout_ms on top.
    max_message: the longest line read from, or sent to, the daemon.

    Connects at once: DaemonNotRunning, SocketAccessDenied or
    HitldConnectionError if that fails. Use it as a context manager, or
    call close().
    """

    def __init__(self, socket: Optional[PathLike] = None, instance: Optional[str] = None,
                 timeout: Optional[float] = CALL_TIMEOUT_DEFAULT, max_message: int = MESSAGE_MAX_DEFAULT) -> None:
        self.path = socket_path(socket, instance)
        self.instance = instance
        self.timeout = timeout
        self.max_message = max_message
        self._next_id = 1
        self._sock = self._open()
        self._reset()

    def _open(self) -> _socket.socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise connect_error(e, self.path, self.instance) from None
        return sock

    def _reset(self) -> None:
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no newline
        self._abandoned: Set[int] = set()
        self._events: Deque[Dict[str, Any]] = collections.deque()
        self._events_overflowed = False
        self._broken: Optional[HitldError] = None

    # -- lifetime
    def close(self) -> None:
        """Closes the connection. Idempotent."""
        if self._broken is None:
            self._broken = ConnectionClosed("the connection was closed by this client.", None, self.path)
        self._sock.close()

    def reconnect(self) -> None:
        """Opens a new connection to the same socket in place of this one
        (which ends, and its watch with it). The errors of Client()."""
        new = self._open()
        self._sock.close()
        self._sock = new
        self._reset()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<hitld.Client %s%s>" % (self.path, " (broken)" if self._broken is not None else "")

    def fileno(self) -> int:
        """The connection's descriptor, for select/poll. Do not read from it."""
        return self._sock.fileno()

    @property
    def broken(self) -> bool:
        """True once the connection can no longer be used."""
        return self._broken is not None

    # -- reading and writing
    def _break(self, e: HitldError) -> HitldError:
        if self._broken is None:
            self._broken = e
            self._sock.close()
        return e

    def _check(self) -> None:
        if self._broken is not None:
            if isinstance(self._broken, ConnectionClosed):
                raise ConnectionClosed(self._broken.message, self._broken.errno, self.path)
            raise ConnectionClosed("the connection is unusable after an earlier error: %s" % self._broken,
                                   None, self.path)

    def _read_message(self, deadline: Optional[float]) -> Dict[str, Any]:
        """The next message; Timeout at the deadline (the connection stays
        usable), ConnectionClosed/ProtocolError/MessageTooLarge (it does not)."""
        while True:
            nl = self._buf.find(b"\n", self._scanned)
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                self._scanned = 0
                if len(line) > self.max_message:
                    raise self._break(MessageTooLarge("hitld sent a line of %d bytes, over the %d-byte limit"
                                                      % (len(line), self.max_message)))
                try:
                    return decode_message(line)
                except ProtocolError as e:
                    raise self._break(e) from None
            self._scanned = len(self._buf)
            if len(self._buf) > self.max_message:
                raise self._break(MessageTooLarge("hitld sent a line over the %d-byte limit" % self.max_message))
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("hitld did not answer in time")
                self._sock.settimeout(left)
            else:
                self._sock.settimeout(None)
            try:
                chunk = self._sock.recv(65536)
            except _socket.timeout:
                raise Timeout("hitld did not answer in time") from None
            except OSError as e:
                raise self._break(ConnectionClosed("the connection to hitld broke: %s" % (e.strerror or e),
                                                   e.errno, self.path)) from None
            if not chunk:
                raise self._break(ConnectionClosed("hitld closed the connection.", errno.ECONNRESET, self.path))
            self._buf += chunk

    def _parting_error(self) -> Optional[HitldError]:
        """The error line a daemon sends before it closes a connection it
        refuses (too many connections), if it is already here: it explains
        the EPIPE a write then gets."""
        try:
            self._sock.settimeout(0)
            while len(self._buf) <= self.max_message:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                self._buf += chunk
        except OSError:
            pass
        for line in bytes(self._buf).split(b"\n"):
            try:
                msg = decode_message(line)
            except ProtocolError:
                continue
            if msg.get("id", 0) is None and "error" in msg:
                try:
                    return error_from_object(msg["error"])
                except ProtocolError:
                    return None
        return None

    def _queue_event(self, msg: Dict[str, Any]) -> None:
        if self._events_overflowed:
            return
        if len(self._events) >= EVENT_QUEUE_MAX:
            self._events_overflowed = True
            return
        self._events.append(msg)

    def _call(self, method: str, params: Dict[str, Any], extra_timeout: float = 0.0) -> Dict[str, Any]:
        self._check()
        rid = self._next_id
        self._next_id += 1
        line = encode_request(rid, method, params, self.max_message)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout + extra_timeout
        answered = False
        try:
            try:
                self._sock.settimeout(self.timeout)
                self._sock.sendall(line)
            except _socket.timeout:
                # Part of the line may be out: the stream cannot be trusted.
                raise self._break(ConnectionClosed("hitld did not read the request in time", errno.ETIMEDOUT,
                                                   self.path)) from None
            except OSError as e:
                raise self._break(self._parting_error() or
                                  ConnectionClosed("the connection to hitld broke: %s" % (e.strerror or e),
                                                   e.errno, self.path)) from None
            except BaseException:
                # A signal (KeyboardInterrupt) in the middle of the line.
                self._break(ConnectionClosed("a request was interrupted while it was being sent", errno.EINTR,
                                             self.path))
                raise
            while True:
                msg = self._read_message(deadline)
                if "id" not in msg:
                    self._queue_event(msg)
                    continue
                mid = msg["id"]
                if mid in self._abandoned:
                    self._abandoned.discard(mid)
                    continue
                if mid is None and "error" in msg:
                    # Not an answer to a call (e.g. too many connections):
                    # the daemon closes the connection after it.
                    answered = True
                    raise self._break(error_from_object(msg["error"]))
                if mid != rid:
                    raise self._break(ProtocolError("hitld answered id %r, expected %r" % (mid, rid)))
                answered = True
                if "error" in msg:
                    raise error_from_object(msg["error"])
                if "result" not in msg:
                    raise self._break(ProtocolError("a reply with neither result nor error"))
                result = msg["result"]
                return cast(Dict[str, Any], result if result is not None else {})
        finally:
            if not answered and self._broken is None:
                # A timeout or a signal: skip the late reply when it comes.
                self._abandoned.add(rid)

    # -- waiting for an answer
    def wait_final(self, request_id: str, timeout: Optional[float] = None,
                   reconnect: Optional[float] = RECONNECT_DEFAULT) -> Record:
        """Waits until the request is final (as many request.wait calls as it
        takes) and returns the record. timeout: seconds in all (None: until
        final; hitld ends every request by its own deadline). WaitTimeout,
        carrying the last record, if it is not final in time.

        When hitld stops or restarts meanwhile (ShuttingDown, a closed
        connection) it reconnects and waits on, for up to `reconnect`
        seconds of absence (0 or None: it raises at once)."""
        end = None if timeout is None else time.monotonic() + timeout
        outage = Outage(reconnect, end)
        while True:
            left = None if end is None else end - time.monotonic()
            try:
                if self._broken is not None:
                    self.reconnect()
                w = self.wait(request_id, timeout_ms=wait_chunk_ms(left))
            except (ShuttingDown, ConnectionClosed, DaemonNotRunning):
                delay = outage.next_try(time.monotonic())
                if delay is None:
                    raise
                self._break(ConnectionClosed("hitld went away", errno.ECONNRESET, self.path))
                time.sleep(delay)
                continue
            outage.over()
            if w.get("done"):
                return cast(Record, w["request"])
            if end is not None and time.monotonic() >= end:
                raise WaitTimeout("request %s is still %s" % (request_id, w["request"].get("state")), w["request"])

    def ask(self, request: Optional[Dict[str, Any]] = None, *, timeout: Optional[float] = None,
            reconnect: Optional[float] = RECONNECT_DEFAULT, **fields: Any) -> Answer:
        """Submits a request and waits for its answer: returns
        Answer(result, record) once it is completed (the reviewer's answer)
        or timed out (the default_response). RequestFailed if it ended failed
        or cancelled; WaitTimeout after timeout seconds (the request stays
        at hitld: wait_final(e.request_id) picks it up again). The wait
        survives a restart of hitld as wait_final()'s does. Give a
        client_ref to make a retried ask() idempotent."""
        sub = self.submit(request, **fields)
        return answer_of(self.wait_final(sub["id"], timeout, reconnect))

    def iter_requests(self, state: Any = None, **filters: Any) -> Iterator[Record]:
        """Every record request.list gives (newest first), page after page."""
        cursor = None
        while True:
            page = self.list(state, cursor=cursor, **filters)
            yield from cast(Iterable[Record], page.get("requests", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -- watching
    def watch(self, ids: Optional[Iterable[str]] = None, **params: Any) -> "Watch":
        """watch: from now on the connection carries a notification for every
        change of a request you may see (only of ids, if given). Returns a
        Watch: iterate it for Events. InvalidState if this connection
        already watches."""
        result = self._call("watch", watch_params(ids, params))
        return Watch(self, int(result.get("watching", 0)))

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next notification, waiting up to timeout seconds (None:
        forever; 0: only what already arrived); None when none came.
        WatchOverflow when the watch fell behind (the connection is then
        closed), ConnectionClosed when the daemon went away."""
        self._check()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._events:
                msg = self._events.popleft()
            elif self._events_overflowed:
                raise self._break(WatchOverflow("more than %d notifications were not read; reconnect, watch "
                                                "again and re-read with list()" % EVENT_QUEUE_MAX))
            else:
                try:
                    msg = self._read_message(deadline)
                except Timeout:
                    return None
                if "id" in msg:
                    if msg["id"] in self._abandoned:
                        self._abandoned.discard(msg["id"])
                        continue
                    if msg["id"] is None and "error" in msg:
                        raise self._break(error_from_object(msg["error"]))
                    raise self._break(ProtocolError("hitld sent a reply to no call: id %r" % (msg["id"],)))
            if msg.get("method") == _OVERFLOW:
                raise self._break(WatchOverflow("hitld dropped this watcher: it fell too far behind; reconnect, "
                                                "watch again and re-read with list()", msg.get("params")))
            return event_from_message(msg)


class Watch:
    """A watching connection's notifications. Iterating blocks until the
    next Event; next(timeout) waits at most timeout seconds. The Client
    stays usable for calls meanwhile."""

    def __init__(self, client: Client, watching: int) -> None:
        self.client = client
        self.watching = watching
        """How many requests you could see when the watch began."""

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        return self.client.next_event(timeout)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        ev = self.client.next_event(None)
        assert ev is not None
        return ev

    def close(self) -> None:
        """Stops watching by closing the connection."""
        self.client.close()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(socket: Optional[PathLike] = None, instance: Optional[str] = None, **kwargs: Any) -> Client:
    """Client(socket, instance, …)."""
    return Client(socket, instance, **kwargs)


__all__ = ["Client", "Watch", "connect", "connect_error", "merge"]

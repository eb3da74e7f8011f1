"""The asyncio client: the same methods as Client, as coroutines.

One AsyncClient owns one connection, opened at the first call (or by
`async with` / connect()). Calls from several tasks may run at once on it:
they are pipelined, and a task reading the connection routes each reply to
its caller by id. Use it from one event loop.
"""
from __future__ import annotations

import asyncio
import collections
import errno
import time
from typing import Any, Awaitable, Deque, Dict, Iterable, Optional, Union, cast

from ._common import (CALL_TIMEOUT_DEFAULT, EVENT_QUEUE_MAX, MESSAGE_MAX_DEFAULT, RECONNECT_DEFAULT, Answer, Event,
                      Outage, PathLike, Record, _Methods, answer_of, decode_message, encode_request, event_from_message, socket_path,
                      wait_chunk_ms, watch_params)
from .client import connect_error
from .errors import (ConnectionClosed, DaemonNotRunning, HitldError, MessageTooLarge, ProtocolError, ShuttingDown,
                     Timeout, WaitTimeout, WatchOverflow, error_from_object)

_Item = Union[Dict[str, Any], HitldError]


class AsyncClient(_Methods[Awaitable[Dict[str, Any]]]):
    """A connection to hitld for asyncio programs. Arguments as Client's.

        async with AsyncClient() as c:
            answer = await c.ask(loop_id=…, request_text=…, …)
    """

    def __init__(self, socket: Optional[PathLike] = None, instance: Optional[str] = None,
                 timeout: Optional[float] = CALL_TIMEOUT_DEFAULT, max_message: int = MESSAGE_MAX_DEFAULT) -> None:
        self.path = socket_path(socket, instance)
        self.instance = instance
        self.timeout = timeout
        self.max_message = max_message
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._reader_task: Optional["asyncio.Task[None]"] = None
        self._send_lock: Optional[asyncio.Lock] = None
        self._pending: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._events: Deque[_Item] = collections.deque()
        self._events_waiter: Optional["asyncio.Future[None]"] = None
        self._events_overflowed = False
        self._next_id = 1
        self._broken: Optional[HitldError] = None
        self._closed = False

    # -- lifetime
    async def connect(self) -> "AsyncClient":
        """Opens the connection (done by the first call otherwise)."""
        if self._closed:
            raise ConnectionClosed("the connection was closed by this client.", None, self.path)
        if self._writer is not None:
            return self
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            if self._writer is not None:
                return self
            try:
                # limit: readuntil() refuses a line (newline included) longer than this.
                self._reader, self._writer = await asyncio.open_unix_connection(self.path,
                                                                                limit=self.max_message + 1)
            except OSError as e:
                raise connect_error(e, self.path, self.instance) from None
            self._reader_task = asyncio.ensure_future(self._read_loop())
        return self

    async def close(self) -> None:
        """Closes the connection; pending calls fail with ConnectionClosed."""
        self._closed = True
        await self._drop()

    async def reconnect(self) -> None:
        """Opens a new connection to the same socket in place of this one
        (which ends, and its watch with it)."""
        await self._drop()
        self._broken = None
        self._events.clear()
        self._events_overflowed = False
        await self.connect()

    async def _drop(self) -> None:
        self._fail(ConnectionClosed("the connection was closed by this client.", None, self.path))
        task, self._reader_task = self._reader_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<hitld.AsyncClient %s%s>" % (self.path, " (broken)" if self._broken is not None else "")

    @property
    def broken(self) -> bool:
        return self._broken is not None

    # -- the reading task
    def _fail(self, e: HitldError) -> None:
        """Marks the connection unusable and closes it: every pending call
        fails with e, and so does the watch once the notifications that
        arrived before are read."""
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(e)
        self._pending.clear()
        if self._broken is not None:
            return
        self._broken = e
        self._events.append(e)
        self._wake_events()
        if self._writer is not None:
            self._writer.close()

    def _wake_events(self) -> None:
        w = self._events_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    raise ConnectionClosed("hitld closed the connection.", errno.ECONNRESET, self.path) from None
                except asyncio.LimitOverrunError:
                    raise MessageTooLarge("hitld sent a line over the %d-byte limit" % self.max_message) from None
                except OSError as e:
                    raise ConnectionClosed("the connection to hitld broke: %s" % (e.strerror or e), e.errno,
                                           self.path) from None
                msg = decode_message(line[:-1])
                if "id" not in msg:
                    if self._events_overflowed:
                        continue
                    if len(self._events) >= EVENT_QUEUE_MAX:
                        self._events_overflowed = True
                        self._events.append(WatchOverflow("more than %d notifications were not read; reconnect, "
                                                          "watch again and re-read with list()" % EVENT_QUEUE_MAX))
                    else:
                        self._events.append(msg)
                    self._wake_events()
                    continue
                if msg["id"] is None and "error" in msg:
                    raise error_from_object(msg["error"])
                fut = self._pending.pop(msg["id"], None)
                if fut is None or fut.done():
                    continue  # the caller gave up (timeout, cancellation)
                fut.set_result(msg)
        except HitldError as e:
            self._fail(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # never leave callers hanging
            self._fail(ProtocolError("reading from hitld failed: %r" % (e,)))

    # -- calls
    def _check(self) -> None:
        if self._broken is not None:
            raise ConnectionClosed("the connection is unusable: %s" % self._broken, None, self.path)

    async def _call(self, method: str, params: Dict[str, Any], extra_timeout: float = 0.0) -> Dict[str, Any]:
        await self.connect()
        self._check()
        assert self._writer is not None and self._send_lock is not None
        rid = self._next_id
        self._next_id += 1
        line = encode_request(rid, method, params, self.max_message)
        fut: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        timeout = None if self.timeout is None else self.timeout + extra_timeout
        try:
            async with self._send_lock:
                self._check()
                self._writer.write(line)
                try:
                    await self._writer.drain()
                except OSError as e:
                    err = ConnectionClosed("the connection to hitld broke: %s" % (e.strerror or e), e.errno,
                                           self.path)
                    self._fail(err)
                    raise err from None
            try:
                msg = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise Timeout("hitld did not answer %s in time" % method) from None
        finally:
            self._pending.pop(rid, None)
            if fut.done() and not fut.cancelled():
                fut.exception()  # retrieved: it was raised, or replaced by a better one
        if "error" in msg:
            raise error_from_object(msg["error"])
        if "result" not in msg:
            perr = ProtocolError("a reply with neither result nor error")
            self._fail(perr)
            raise perr
        result = msg["result"]
        return cast(Dict[str, Any], result if result is not None else {})

    # -- waiting for an answer
    async def wait_final(self, request_id: str, timeout: Optional[float] = None,
                         reconnect: Optional[float] = RECONNECT_DEFAULT) -> Record:
        """As Client.wait_final(), reconnecting as it does."""
        end = None if timeout is None else time.monotonic() + timeout
        outage = Outage(reconnect, end)
        while True:
            left = None if end is None else end - time.monotonic()
            try:
                if self._broken is not None:
                    await self.reconnect()
                w = await self.wait(request_id, timeout_ms=wait_chunk_ms(left))
            except (ShuttingDown, ConnectionClosed, DaemonNotRunning):
                delay = outage.next_try(time.monotonic())
                if delay is None or self._closed:
                    raise
                self._fail(ConnectionClosed("hitld went away", errno.ECONNRESET, self.path))
                await asyncio.sleep(delay)
                continue
            outage.over()
            if w.get("done"):
                return cast(Record, w["request"])
            if end is not None and time.monotonic() >= end:
                raise WaitTimeout("request %s is still %s" % (request_id, w["request"].get("state")), w["request"])

    async def ask(self, request: Optional[Dict[str, Any]] = None, *, timeout: Optional[float] = None,
                  reconnect: Optional[float] = RECONNECT_DEFAULT, **fields: Any) -> Answer:
        """As Client.ask(): submits and waits; Answer(result, record)."""
        sub = await self.submit(request, **fields)
        return answer_of(await self.wait_final(sub["id"], timeout, reconnect))

    # -- watching
    async def watch(self, ids: Optional[Iterable[str]] = None, **params: Any) -> "AsyncWatch":
        """As Client.watch(); iterate the AsyncWatch with `async for`."""
        result = await self._call("watch", watch_params(ids, params))
        return AsyncWatch(self, int(result.get("watching", 0)))

    async def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """As Client.next_event()."""
        await self.connect()
        end = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._events_waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._events_waiter), left)
            except asyncio.TimeoutError:
                return None
            finally:
                self._events_waiter = None
        item = self._events[0]
        if isinstance(item, HitldError):
            self._fail(item)  # stays queued: every later read fails too
            raise item
        self._events.popleft()
        if item.get("method") == "watch.overflow":
            err = WatchOverflow("hitld dropped this watcher: it fell too far behind; reconnect, watch again "
                                "and re-read with list()", item.get("params"))
            self._events.appendleft(err)
            self._fail(err)
            raise err
        return event_from_message(item)


class AsyncWatch:
    """A watching AsyncClient's notifications: `async for ev in watch`."""

    def __init__(self, client: AsyncClient, watching: int) -> None:
        self.client = client
        self.watching = watching

    async def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        return await self.client.next_event(timeout)

    def __aiter__(self) -> "AsyncWatch":
        return self

    async def __anext__(self) -> Event:
        ev = await self.client.next_event(None)
        assert ev is not None
        return ev

    async def close(self) -> None:
        await self.client.close()


__all__ = ["AsyncClient", "AsyncWatch"]

"""The toxic chain of one link while it has toxics (the reference's ToxicLink).

    source ─► head ─► [noop] ─► toxic 1 ─► … ─► toxic n ─► tail ─► writer ─► destination
                      stub 0     stub 1         stub n

Each stub runs one toxic as a task, reading its input channel and writing its output
channel; the writer task copies the tail to the destination socket. Chains change while
data flows, with the reference's choreography (spec §6):

* add: interrupt the last stub, put the new stub behind it, restart both;
* update: interrupt the stub, restart it with the new attributes (toxicity drawn again);
* remove: interrupt the stub, let the previous stub flush into it, forward what it held,
  unlink it and restart the previous stub; a timeout toxic's removal closes the stream.

"Interrupt" waits until the toxic's ``pipe`` has returned, so it never races a chunk.
When the last toxic is gone and everything is drained, the writer hands the link back to
the direct path (``Link.feed`` writing straight to the destination).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque

from . import toxics
from .stream import INTERRUPTED, TIMEOUT, chunks_of

log = logging.getLogger("toxiproxy.link")

HEAD_CAPACITY = 1  # the reference's input channel is unbuffered: read pauses when full
_NUDGE = object()  # wakes the writer so it re-checks whether the chain can be dropped


class Channel:
    """A bounded FIFO between two stages, like a Go channel.

    ``put`` waits while full, ``get`` waits while empty; a closed channel yields its
    remaining chunks and then None forever (end of stream). One consumer at a time.
    """

    __slots__ = ("items", "capacity", "closed", "getter", "putters", "on_space")

    def __init__(self, capacity: int = 0):
        self.items: deque = deque()
        self.capacity = max(1, capacity)  # Go's unbuffered channel holds one in flight
        self.closed = False
        self.getter: asyncio.Future | None = None
        self.putters: list[asyncio.Future] = []
        self.on_space = None  # called when a full channel gets room (the head's reader)

    def full(self) -> bool:
        return len(self.items) >= self.capacity

    def put_nowait(self, item) -> None:
        getter = self.getter
        if getter is not None and not getter.done():
            self.getter = None
            getter.set_result(item)
        else:
            self.items.append(item)

    async def put(self, item) -> None:
        while self.full():
            waiter = asyncio.get_running_loop().create_future()
            self.putters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self.putters:
                    self.putters.remove(waiter)
        self.put_nowait(item)

    def take(self):
        """Remove and return the oldest item (the channel must not be empty)."""
        item = self.items.popleft()
        if not self.full():
            self._room()
        return item

    def _room(self) -> None:
        for waiter in self.putters:
            if not waiter.done():
                waiter.set_result(None)
        if self.on_space is not None:
            self.on_space()

    def widen(self) -> None:
        """Stop bounding this channel (used while the toxic reading it is removed)."""
        self.capacity = 1 << 62
        self._room()

    def close(self) -> None:
        self.closed = True
        getter = self.getter
        if getter is not None and not getter.done():
            self.getter = None
            getter.set_result(None)

    async def get(self):
        """The next item, or None once closed and drained."""
        if self.items:
            return self.take()
        if self.closed:
            return None
        getter = asyncio.get_running_loop().create_future()
        self.getter = getter
        try:
            return await getter
        finally:
            if self.getter is getter:
                self.getter = None

    def nudge(self) -> None:
        getter = self.getter
        if getter is not None and not getter.done():
            self.getter = None
            getter.set_result(_NUDGE)


class _Deadline:
    """Resolve a future with a value once ``delay`` seconds have passed on time.monotonic().

    uvloop's timers tick in whole milliseconds and can fire a little early, so the timer
    re-arms (a bounded number of times) until the deadline has really passed.
    """

    __slots__ = ("future", "value", "deadline", "handle", "tries")

    def __init__(self, future: asyncio.Future, delay: float, value):
        self.future, self.value = future, value
        self.deadline = time.monotonic() + delay
        self.tries = 0
        self.handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        if self.future.done():
            return
        left = self.deadline - time.monotonic()
        if left > 0 and self.tries < 8:
            self.tries += 1
            self.handle = asyncio.get_running_loop().call_later(max(left, 0.001), self._fire)
            return
        self.future.set_result(self.value)

    def cancel(self) -> None:
        self.handle.cancel()


class Stub:
    """One toxic running on one link (the reference's ToxicStub); see toxics/__init__."""

    __slots__ = ("pipeline", "input", "output", "state", "task", "closed", "interrupting", "waiter")

    def __init__(self, pipeline: Pipeline, input: Channel, output: Channel):
        self.pipeline = pipeline
        self.input, self.output = input, output
        self.state = None
        self.task: asyncio.Task | None = None
        self.closed = False
        self.interrupting = False
        self.waiter: asyncio.Future | None = None  # what an interrupt must wake

    # ---- what toxics use

    async def recv(self, timeout: float | None = None):
        """The next chunk, None at end of stream, INTERRUPTED, or TIMEOUT."""
        if self.interrupting:
            return INTERRUPTED
        channel = self.input
        if channel.items:
            return channel.take()
        if channel.closed:
            return None
        if timeout is not None and timeout <= 0:
            return TIMEOUT
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = channel.getter = waiter
        timer = _Deadline(waiter, timeout, TIMEOUT) if timeout is not None else None
        try:
            return await waiter
        finally:
            self.waiter = None
            if channel.getter is waiter:
                channel.getter = None
            if timer is not None:
                timer.cancel()

    async def send(self, chunk) -> None:
        await self.output.put(chunk)

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True if interrupted instead (the toxic must then return)."""
        if self.interrupting:
            return True
        if seconds <= 0:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        timer = _Deadline(waiter, seconds, None)
        try:
            return (await waiter) is INTERRUPTED
        finally:
            self.waiter = None
            timer.cancel()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``; interrupts wait for this to end."""
        if seconds > 0:
            waiter = asyncio.get_running_loop().create_future()
            timer = _Deadline(waiter, seconds, None)
            try:
                await waiter
            finally:
                timer.cancel()

    def close(self) -> None:
        """End the stream at this toxic: what follows sees end of stream."""
        if not self.closed:
            self.closed = True
            self.output.close()

    # ---- what the pipeline uses

    def start(self, wrapper) -> None:
        if not self.pipeline.dead:
            self.task = asyncio.get_running_loop().create_task(self._run(wrapper))

    async def _run(self, wrapper) -> None:
        # Toxicity is drawn each time a toxic starts on a link (spec §6).
        kind = wrapper.kind if random.random() < wrapper.toxicity else toxics.REGISTRY["noop"]
        try:
            await kind.pipe(self, wrapper.attrs)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken toxic must not wedge the connection
            log.exception("toxic %s failed; closing its stream", wrapper.name)
            self.close()

    async def interrupt(self) -> bool:
        """Stop the running toxic; False if the stream was already closed at this stub."""
        task = self.task
        if self.closed or task is None or task.done():
            return not self.closed
        self.interrupting = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(INTERRUPTED)
        try:
            await asyncio.wait((task,))
        finally:
            self.interrupting = False
        return not self.closed and not self.pipeline.dead

    def idle(self) -> bool:
        """Waiting for input with nothing in hand (asked of the hidden noop only, whose
        one wait is for input)."""
        return self.waiter is not None and not self.waiter.done() and not self.interrupting


class Pipeline:
    """The chain of stubs of one link; built when the link has (or gets) toxics."""

    def __init__(self, link, chain: list):
        self.link = link
        self.dead = False
        self.busy = 0  # chain changes in progress; the chain is not dropped meanwhile
        self.head = Channel(HEAD_CAPACITY)
        self.head.on_space = link.update_reading
        self.stubs: list[Stub] = []
        channel = self.head
        for i, wrapper in enumerate(chain):
            following = chain[i + 1].kind.buffer_size if i + 1 < len(chain) else 0
            stub = Stub(self, channel, Channel(following))
            stub.state = wrapper.kind.new_state()
            self.stubs.append(stub)
            channel = stub.output
        self.tail = channel
        for stub, wrapper in zip(self.stubs, chain, strict=False):
            stub.start(wrapper)
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def feed(self, data: bytes) -> None:
        for chunk in chunks_of(data):
            self.head.put_nowait(chunk)
        if self.head.full():
            self.link.update_reading()

    def end_of_input(self) -> None:
        self.head.close()

    async def _write(self) -> None:
        link, tail = self.link, self.tail
        while True:
            if not tail.items and self._drained():
                self._hand_back()
                return
            chunk = await tail.get()
            if chunk is _NUDGE:
                continue
            if chunk is None:
                break
            if chunk.data:
                link.write(chunk.data)
            if link.dest_blocked:
                await link.writable()
        link.output_ended()

    def _drained(self) -> bool:
        """Only the hidden noop is left, idle, with nothing queued anywhere."""
        return (
            self.busy == 0
            and len(self.stubs) == 1
            and not self.head.items
            and not self.head.closed
            and not self.tail.closed
            and self.stubs[0].idle()
        )

    def _hand_back(self) -> None:
        self.dead = True
        for stub in self.stubs:
            if stub.task is not None:
                stub.task.cancel()
        self.link.pipeline_done(self)

    def cancel(self) -> None:
        """Stop every task now (the destination is gone, or the connection is over)."""
        self.dead = True
        for stub in self.stubs:
            if stub.task is not None:
                stub.task.cancel()
        self.writer.cancel()

    # ---- chain changes (serialised by the proxy's ToxicCollection)

    async def add(self, wrapper, previous) -> None:
        """Append a toxic; ``previous`` is the definition now second to last."""
        last = self.stubs[-1]
        new_input = Channel(wrapper.kind.buffer_size)
        new = Stub(self, new_input, last.output)
        self.stubs.append(new)
        if await last.interrupt():
            last.output = new_input
            new.state = wrapper.kind.new_state()
            new.start(wrapper)
            last.start(previous)
        else:  # the stream already ended at the last stub: the new one is closed too
            new.closed = True
            new_input.close()

    async def update(self, index: int, wrapper) -> None:
        stub = self.stubs[index]
        if await stub.interrupt():
            stub.start(wrapper)

    async def remove(self, index: int, wrapper, previous) -> None:
        """Unlink the toxic at ``index``; ``previous`` is the definition before it."""
        stub = self.stubs[index]
        if not await stub.interrupt():
            return
        if wrapper.kind.closes_on_removal:
            stub.close()
            return
        before = self.stubs[index - 1]
        stub.input.widen()  # the previous toxic may flush into it without blocking
        relink = await before.interrupt()
        while stub.input.items:
            await stub.output.put(stub.input.take())
        if not relink or self.dead:  # the stream ended before this toxic: pass the end on
            stub.close()
            return
        before.output = stub.output
        del self.stubs[index]
        before.start(previous)

    def changed(self) -> None:
        """A chain change finished: let the writer check whether it can hand back."""
        if not self.dead and self.busy == 0 and len(self.stubs) == 1:
            self.tail.nudge()

"""The reference transport: an in-memory broker in the same event loop.

It is what every other transport is compared with (the cost of the harness alone)
and the test double of the suite. ``send`` is acknowledged once the payload is in
the broker's queue; the receiver drains the queue in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from iotbench.transports.base import (
    Deliver,
    ReceiverDefaults,
    TransportDefaults,
    TransportError,
    stop_task,
    task_failure,
)
from iotbench.transports.options import TransportOptions, option

if TYPE_CHECKING:
    from iotbench.transports.endpoints import Endpoint

__all__ = ["InProcessOptions", "InProcessTransport"]


@dataclass(frozen=True)
class InProcessOptions(TransportOptions):
    transport: ClassVar[str] = "inprocess"

    # all in memory: a batch-100 JSON payload is ~25 KB, so a million of them is already 25 GB
    max_queued: int = option(
        100_000,
        "payloads the receiver has not taken yet; senders wait when it is full",
        low=1,
        high=1_000_000,
        unit="payloads",
    )


class _Broker:
    def __init__(self, max_queued: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(max_queued)


class _Sender:
    def __init__(self, broker: _Broker) -> None:
        self._broker = broker
        self._closed = False

    async def send(self, key: str, payload: bytes) -> None:
        if self._closed:
            raise TransportError("in-process sender used after close()")
        await self._broker.queue.put(payload)  # waits while the broker is full: backpressure

    async def close(self) -> None:
        self._closed = True


class _Receiver(ReceiverDefaults):
    def __init__(self, broker: _Broker, deliver: Deliver) -> None:
        self._broker = broker
        self._deliver = deliver
        self._task = asyncio.create_task(self._drain(), name="inprocess-receiver")

    async def _drain(self) -> None:
        queue, deliver = self._broker.queue, self._deliver
        while True:
            payload = await queue.get()
            deliver(payload)
            # take whatever else is already queued without a trip through the loop
            while not queue.empty():
                deliver(queue.get_nowait())

    def failure(self) -> str | None:
        return task_failure(self._task, None)

    async def close(self) -> None:
        await stop_task(self._task)


class InProcessTransport(TransportDefaults):
    """``InProcessTransport(max_queued=100_000)``: a bounded in-memory queue."""

    name: ClassVar[str] = "inprocess"
    label: ClassVar[str] = "an in-memory queue in the same event loop: the harness alone, the reference"
    Options: ClassVar[type[InProcessOptions]] = InProcessOptions

    def __init__(self, **options: Any) -> None:
        self.options = InProcessOptions(**options)
        self._max_queued = self.options.max_queued
        self._broker: _Broker | None = None

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._broker = _Broker(self._max_queued)  # the broker is a queue in this process: no server

    def _running(self) -> _Broker:
        if self._broker is None:
            raise TransportError("in-process transport used before start()")
        return self._broker

    async def open_sender(self, index: int) -> _Sender:
        return _Sender(self._running())

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        return _Receiver(self._running(), deliver)

    async def stop(self) -> None:
        self._broker = None

"""The transport contract, async: a server side, senders and a receiver.

Modelled on OpenMessaging Benchmark's driver API: a sender's ``send(key, payload)``
returns once the server acknowledged the payload (or, for fire-and-forget modes,
once the protocol considers it sent); the receiver hands each payload to the
consumer's ``deliver`` callback. Transports never time anything: the runner stamps
send, acknowledgement and receipt times around these calls.

A transport is a class constructed with its options (``MqttTransport(qos=1)``).
Its ``OPTIONS`` mapping names every option and its default; a spec that names
anything else is refused before any cell runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, runtime_checkable

__all__ = ["Deliver", "Sender", "Receiver", "Transport", "TransportError", "stop_task"]

Deliver = Callable[[bytes], None]
"""Called in the event loop's thread with each payload, in the order received."""


class TransportError(RuntimeError):
    """A send, connect or server failure, with a reason a user can act on."""


@runtime_checkable
class Sender(Protocol):
    """One connection that devices (or a gateway) send through.

    >>> await sender.send("b0001-a002-s1", payload)  # doctest: +SKIP
    """

    async def send(self, key: str, payload: bytes) -> None:
        """Send one payload (one event or one batch); return when acknowledged."""

    async def close(self) -> None: ...


@runtime_checkable
class Receiver(Protocol):
    """The consuming side; it was given ``deliver`` when opened."""

    async def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A protocol stack plus the server it talks to.

    >>> transport = InProcessTransport()                    # doctest: +SKIP
    >>> await transport.start(workdir)                      # starts or attaches the server
    >>> receiver = await transport.open_receiver(consumer.deliver)
    >>> sender = await transport.open_sender(0)
    """

    name: ClassVar[str]
    OPTIONS: ClassVar[Mapping[str, Any]]

    async def start(self, workdir: Path) -> None:
        """Start (or attach to) the server; its files and logs go under ``workdir``."""

    async def open_sender(self, index: int) -> Sender:
        """Open connection number ``index`` (devices are spread over connections)."""

    async def open_receiver(self, deliver: Deliver) -> Receiver: ...

    async def stop(self) -> None:
        """Close everything and stop the server this transport started, if any."""


async def stop_task(task: "asyncio.Task[object]") -> None:
    """Cancel a receiver's background task and wait until it has really ended."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

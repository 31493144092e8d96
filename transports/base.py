"""The transport contract, async: senders and a receiver, connected to servers it is handed.

Modelled on OpenMessaging Benchmark's driver API: a sender's ``send(key, payload)``
returns once the server acknowledged the payload (or, for fire-and-forget modes,
once the protocol considers it sent); the receiver hands each payload to the
consumer's ``deliver`` callback. Transports never time anything: the runner stamps
send, acknowledgement and receipt times around these calls.

A transport is a class constructed with its options as keywords (``MqttTransport(qos=1)``),
which it turns into its ``Options`` structure: one frozen dataclass declaring every
option's type, default, range or choices and purpose (``transports/options.py``).
Constructing that structure checks every value and does no I/O: loading a spec
constructs it once per option variant, so a bad value is refused before anything
starts or is written, and ``iotbench list`` shows the declarations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from iotbench.transports.endpoints import Endpoint
    from iotbench.transports.options import TransportOptions
    from iotbench.transports.servers.base import Server

__all__ = [
    "Deliver",
    "Load",
    "Sender",
    "Receiver",
    "ReceiverDefaults",
    "Transport",
    "TransportError",
    "TransportDefaults",
    "stop_task",
    "task_failure",
]

Deliver = Callable[[bytes], None]
"""Called in the event loop's thread with each payload, in the order received."""


class TransportError(RuntimeError):
    """A send, connect or server failure, with a reason a user can act on."""


@dataclass(frozen=True)
class Load:
    """What a cell will offer, told to the transport before ``start`` (``transport.plan(load)``).

    A transport that stands for a metered service sizes its limits from it (the local
    Event Hubs endpoint gets the throughput units the offered rate needs).
    """

    events_per_s: float
    batch: int
    bytes_per_event: float


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
    """The consuming side; it was given ``deliver`` when opened.

    >>> receiver.failure()  # doctest: +SKIP
    'event stream broke: ClientPayloadError(...)'
    """

    def failure(self) -> str | None:
        """Why this receiver stopped delivering (its stream broke, its task died, ``deliver``
        raised), or None while it is healthy. The runner fails the cell with this reason."""

    def mark(self) -> Any:
        """Where delivery stands now; called when the cold store seals a file (None: nothing to track)."""

    def durable(self, mark: Any) -> None:
        """Everything delivered up to ``mark`` is durable in the cold store: a broker-side checkpoint
        (Event Hubs' blob store) may move there now, never before."""

    async def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A protocol stack: it speaks to servers, it never starts them.

    >>> transport = MqttTransport(qos=1)                    # doctest: +SKIP
    >>> transport.servers()                                 # what a cell needs started here, by role
    {'broker': Mosquitto(...)}
    >>> await transport.start({"broker": endpoint})         # connect to what the harness started
    >>> receiver = await transport.open_receiver(consumer.deliver)
    >>> sender = await transport.open_sender(0)

    ``iotbench.pipeline.deploy`` starts the servers and the transport together.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    """What it is, in one line (``iotbench list``)."""
    Options: ClassVar[type[TransportOptions]]
    """Its options, declared once: ``MqttTransport(**values)`` makes ``MqttOptions(**values)``."""
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]]
    """Option sets the contract test runs it with (default: ``[{}]``, the defaults)."""
    libraries: ClassVar[tuple[str, ...]]
    """Distributions it uses (client, and the servers it may start): their versions go into run.json."""
    options: TransportOptions

    def __init__(self, **options: Any) -> None:
        """Check the options (``Options(**options)``); no I/O."""

    def servers(self) -> Mapping[str, Server]:
        """The servers a cell needs started on this machine, by role (``{"broker": Mosquitto()}``);
        ``{}`` when the options or the environment name outside endpoints, or none is needed."""

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        """Connect to the started servers' ``endpoints`` (by the roles ``servers()`` named), or
        to the outside endpoints the options or the environment name."""

    async def open_sender(self, index: int) -> Sender:
        """Open connection number ``index`` (devices are spread over connections)."""

    async def open_receiver(self, deliver: Deliver) -> Receiver: ...

    async def stop(self) -> None:
        """Close every connection (the servers are stopped by whoever started them)."""

    def plan(self, load: Load) -> None:
        """Told the cell's offered load before ``start``; most transports ignore it."""

    def counters(self) -> dict[str, int]:
        """Counts only the transport can see (throttled sends, retries, publications); may be empty."""


class ReceiverDefaults:
    """The receiver hooks' defaults: healthy, and no broker-side checkpoint to move."""

    def failure(self) -> str | None:
        return None

    def mark(self) -> Any:
        return None

    def durable(self, mark: Any) -> None:
        return None


class TransportDefaults:
    """The optional parts' defaults; a transport class inherits them and overrides what it offers."""

    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{}]
    libraries: ClassVar[tuple[str, ...]] = ()

    def plan(self, load: Load) -> None:
        return None

    def servers(self) -> Mapping[str, Server]:
        return {}

    def counters(self) -> dict[str, int]:
        return {}


def task_failure(task: asyncio.Task[object], error: str | None = None) -> str | None:
    """A receiver's ``failure()`` from its background task: the error it recorded, or how the task died."""
    if error is not None:
        return error
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None:
            return f"receiver died: {type(exc).__name__}: {exc}"
        return "receiver stopped"
    return None


async def stop_task(task: asyncio.Task[object]) -> None:
    """Cancel a receiver's background task and wait until it has really ended."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

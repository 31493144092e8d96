"""Every registered transport, against its real server: delivers everything, in order per device.

Transports declare option sets to check in ``CONTRACT_VARIANTS`` (``transports/base.py``;
default: their defaults). A transport whose server is not installed skips here -- and fails with
CI=true.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from support import need_server, start_transport

from iotbench.registry import PluginUnavailable
from iotbench.transports import TRANSPORTS, get_transport

DEVICES, PER_DEVICE = 20, 25
DELIVERY_TIMEOUT_S = 30.0


def _cases():
    for name in TRANSPORTS.names():
        try:
            variants = get_transport(name).CONTRACT_VARIANTS
        except PluginUnavailable:
            variants = [{}]
        for options in variants:
            yield pytest.param(name, options, id=f"{name}{options or ''}")


async def _exercise(transport, tmp_path) -> list[bytes]:
    received: list[bytes] = []
    deployment = await start_transport(transport, tmp_path / "server")
    try:
        receiver = await transport.open_receiver(received.append)
        senders = [await transport.open_sender(i) for i in range(2)]

        async def device(d: int) -> None:
            for seq in range(PER_DEVICE):  # awaited one by one: a device's order is its own
                await senders[d % 2].send(f"dev-{d}", f"dev-{d}:{seq}".encode())

        await asyncio.gather(*(device(d) for d in range(DEVICES)))
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        while len(received) < DEVICES * PER_DEVICE and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a late duplicate would show up here
        for sender in senders:
            await sender.close()
        await receiver.close()
    finally:
        await deployment.stop()
    return received


@pytest.mark.server
@pytest.mark.parametrize(("name", "options"), list(_cases()))
def test_delivers_everything_in_order_per_device(name, options, tmp_path):
    try:
        cls = get_transport(name)
    except PluginUnavailable as exc:
        need_server(str(exc))
    received = asyncio.run(asyncio.wait_for(_exercise(cls(**options), tmp_path), 120))
    expected = {f"dev-{d}:{s}".encode() for d in range(DEVICES) for s in range(PER_DEVICE)}
    assert set(received) == expected, f"missing {len(expected - set(received))} payloads"
    by_device: dict[str, list[int]] = {}
    for payload in received:
        device, seq = payload.decode().split(":")
        by_device.setdefault(device, []).append(int(seq))
    for device, seqs in by_device.items():
        first_seen = list(dict.fromkeys(seqs))  # at-least-once may repeat; order is what counts
        assert first_seen == sorted(first_seen), f"{device} out of order: {first_seen}"

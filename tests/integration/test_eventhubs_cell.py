"""One ``eventhubs`` cell against the local endpoint: what it reads, what it publishes, its limits.

Issue 16: a cell's consumer reads only the events enqueued after it opened (a hub keeps
the previous cells' events), batch 1 is one event per publication (the endpoint's count
says so), and the endpoint runs with Standard-tier limits unless the spec says otherwise.
"""

from __future__ import annotations

import asyncio

import pytest
from support import arrived, need_modules, start_transport

need_modules("azure.eventhub", extra="eventhubs")

from iotbench.model.cost import throughput_units  # noqa: E402
from iotbench.transports.base import Load, TransportError  # noqa: E402
from iotbench.transports.eventhubs.consumer import PREFETCH_MIN, prefetch  # noqa: E402
from iotbench.transports.eventhubs.transport import EventHubsTransport  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

CALL_S = 30.0


def _items(tag: str, n: int) -> list[tuple[str, bytes]]:
    return [(f"{tag}-dev{i % 5}", f"{tag}-{i}".encode()) for i in range(n)]


def test_a_new_receiver_reads_only_what_was_enqueued_after_it_opened(tmp_path):
    """A previous cell's events stay in the hub (as in Azure, for the retention): they must not arrive."""

    async def scenario():
        transport = EventHubsTransport(partitioning="id")
        deployment = await start_transport(transport, tmp_path)
        try:
            async with asyncio.timeout(CALL_S):
                sender = await transport.open_sender(0)
                earlier: list[bytes] = []
                receiver = await transport.open_receiver(earlier.append)
                for device, payload in _items("old", 20):
                    await sender.send(device, payload)
                assert len(await arrived(earlier, 20)) == 20
                await receiver.close()  # the "previous cell" ends; its 20 events stay in the hub
                for device, payload in _items("gap", 3):  # sent while no receiver is open: before the cell
                    await sender.send(device, payload)

                received: list[bytes] = []
                receiver = await transport.open_receiver(received.append)
                new = _items("new", 20)
                for device, payload in new:
                    await sender.send(device, payload)
                await arrived(received, 20)
                await asyncio.sleep(0.5)  # anything older would have come first, or by now
                await receiver.close()
                await sender.close()
        finally:
            await deployment.stop()
        assert sorted(received) == sorted(p for _, p in new), "a previous cell's events were read"
        assert deployment.counters()["server_events"] == 43

    asyncio.run(scenario())


def test_batch_1_sends_one_event_per_publication_unless_group_sends(tmp_path):
    async def publish(group_sends: bool) -> dict[str, int]:
        transport = EventHubsTransport(group_sends=group_sends)
        deployment = await start_transport(transport, tmp_path / str(group_sends))
        try:
            async with asyncio.timeout(CALL_S):
                received: list[bytes] = []
                receiver = await transport.open_receiver(received.append)
                sender = await transport.open_sender(0)
                # 60 concurrent sends, as a publisher has them in flight
                await asyncio.gather(*(sender.send(device, payload) for device, payload in _items("x", 60)))
                assert len(await arrived(received, 60)) == 60
                await sender.close()
                await receiver.close()
        finally:
            await deployment.stop()
        return deployment.counters()

    one_each = asyncio.run(publish(False))
    assert one_each["server_publications"] == one_each["server_events"] == 60, one_each
    grouped = asyncio.run(publish(True))  # the old behaviour, now only when asked for
    assert grouped["server_events"] == 60 and grouped["server_publications"] < 60, grouped


def test_limits_are_standard_tier_by_default_with_units_from_the_cost_model(tmp_path):
    async def limits(plan: Load | None, **options) -> dict[str, int]:
        transport = EventHubsTransport(**options)
        if plan is not None:
            transport.plan(plan)
        deployment = await start_transport(transport, tmp_path / f"cell{len(list(tmp_path.iterdir()))}")
        await deployment.stop()
        return {k: v for k, v in deployment.counters().items() if k.startswith("limit_")}

    fabrikam = Load(events_per_s=100_000 / 60, batch=1, bytes_per_event=60.0)
    assert throughput_units(fabrikam.events_per_s, fabrikam.bytes_per_event) == 2
    assert asyncio.run(limits(fabrikam)) == {
        "limit_throughput_units": 2,
        "limit_max_connections": 5000,
        "limit_max_message_bytes": 1024 * 1024,
    }
    rush = Load(events_per_s=100_000, batch=100, bytes_per_event=60.0)  # the whole fleet in one second
    assert asyncio.run(limits(rush))["limit_throughput_units"] == throughput_units(100_000, 60.0) == 100
    assert asyncio.run(limits(None))["limit_throughput_units"] == 1  # nothing planned: the model's minimum
    assert asyncio.run(limits(fabrikam, throughput_units=5, max_connections=0)) == {
        "limit_throughput_units": 5,
        "limit_max_connections": 0,
        "limit_max_message_bytes": 1024 * 1024,
    }
    assert asyncio.run(limits(fabrikam, throughput_units=0))["limit_throughput_units"] == 0


def test_the_default_limit_throttles_what_the_planned_units_cannot_take(tmp_path):
    """Planned at 100 events/s (1 TU: 1 MB/s), two 600 KB publications in a second: the second is ServerBusy."""

    async def send_two(**options) -> dict[str, int]:
        transport = EventHubsTransport(retries=0, **options)
        transport.plan(Load(events_per_s=100, batch=1, bytes_per_event=100.0))
        deployment = await start_transport(transport, tmp_path / f"cell{len(options)}")
        failures = []
        try:
            async with asyncio.timeout(CALL_S):
                sender = await transport.open_sender(0)
                for i in range(2):
                    try:
                        await sender.send("dev-1", bytes([i]) * 600_000)
                    except TransportError as exc:
                        failures.append(str(exc))
                await sender.close()
        finally:
            await deployment.stop()
        return {**deployment.counters(), "failed": len(failures)}

    limited = asyncio.run(send_two())
    assert limited["server_throttled"] >= 1 and limited["failed"] == 1, limited
    unlimited = asyncio.run(send_two(throughput_units=0))
    assert unlimited["server_throttled"] == 0 and unlimited["failed"] == 0, unlimited


@pytest.mark.parametrize(
    "bad",
    [
        {"throughput_units": "lots"},
        {"throughput_units": -1},
        {"throughput_units": True},
        {"max_connections": 1.5},
        {"group_sends": "yes"},
    ],
)
def test_bad_limit_and_grouping_options_are_refused_when_constructed(bad):
    with pytest.raises(TransportError, match=next(iter(bad))):
        EventHubsTransport(**bad)


def test_prefetch_covers_the_planned_rate_per_partition():
    assert prefetch(None, 4) == PREFETCH_MIN
    assert prefetch(Load(100_000 / 60, 1, 60.0), 4) == 12_500  # 417 events/s per partition, 30 s of them
    assert prefetch(Load(100_000 / 60, 100, 60.0), 4) == PREFETCH_MIN  # 4 received events/s per partition


def test_a_deliver_that_raises_fails_the_receiver(tmp_path):
    async def scenario():
        transport = EventHubsTransport()
        deployment = await start_transport(transport, tmp_path)
        try:
            async with asyncio.timeout(CALL_S):

                def deliver(payload: bytes) -> None:
                    raise ValueError("cold store full")

                receiver = await transport.open_receiver(deliver)
                assert receiver.failure() is None
                sender = await transport.open_sender(0)
                await sender.send("dev-1", b"x")
                for _ in range(100):
                    if receiver.failure():
                        break
                    await asyncio.sleep(0.05)
                await sender.close()
                failure = receiver.failure()
                await receiver.close()
        finally:
            await deployment.stop()
        assert failure == "deliver raised ValueError: cold store full"

    asyncio.run(scenario())

"""The local Event Hubs endpoint against the unchanged azure-eventhub SDK (async clients).

One endpoint process serves the module (it starts in well under a second); every SDK
call is bounded by ``asyncio.timeout`` because the SDK can hang on a peer it does not
understand (FACTS.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from support import need_modules, need_server

need_modules("azure.eventhub", extra="eventhubs")

from azure.eventhub import EventData  # noqa: E402
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient  # noqa: E402
from azure.eventhub.exceptions import AuthenticationError, EventHubError  # noqa: E402

from iotbench.transports.sas import ConnectionString  # noqa: E402
from iotbench.transports.servers.eventhubs import EndpointSettings, LocalEventHubs  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

CALL_S = 15.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    try:
        endpoint = LocalEventHubs(tmp_path_factory.mktemp("eventhubs"), EndpointSettings(partitions=4)).start()
    except Exception as exc:  # noqa: BLE001 - a missing dependency skips (fails in CI)
        need_server(f"local Event Hubs endpoint did not start: {exc}")
    yield endpoint
    endpoint.stop()


async def _receive(conn_str: str, partition: str, starting_position, expected: int, **kwargs) -> list:
    """Events of one partition from ``starting_position`` until ``expected`` arrived (bounded)."""
    got: list = []
    done = asyncio.Event()

    async def on_event(context, event) -> None:
        got.append(event)
        if len(got) >= expected:
            done.set()

    client = EventHubConsumerClient.from_connection_string(conn_str, consumer_group="$default", retry_total=0)
    task = asyncio.create_task(
        client.receive(on_event, partition_id=partition, starting_position=starting_position, **kwargs)
    )
    try:
        async with asyncio.timeout(CALL_S):
            await done.wait()
        await asyncio.sleep(0.3)  # anything extra (a filter off by one) would arrive here
    finally:
        async with asyncio.timeout(CALL_S):
            await client.close()
        task.cancel()
    return got


def test_sdk_sends_singles_batches_and_keyed_events_and_reads_them_from_an_offset(hub):
    async def scenario():
        producer = EventHubProducerClient.from_connection_string(hub.connection_string, retry_total=0)
        async with asyncio.timeout(CALL_S):
            props = await producer.get_eventhub_properties()
            assert props["eventhub_name"] == "telemetry" and props["partition_ids"] == ["0", "1", "2", "3"]
            # single events and a batch, all to partition 1
            await producer.send_event(EventData(b"single-0"), partition_id="1")
            batch = await producer.create_batch(partition_id="1")
            for i in range(5):
                batch.add(EventData(f"batched-{i}".encode()))
            await producer.send_batch(batch)
            await producer.send_event(EventData(b"single-1"), partition_id="1")
            # partition-keyed: one key always lands on one partition
            for i in range(6):
                await producer.send_event(EventData(f"keyed-{i}".encode()), partition_key="device-42")
            info = await producer.get_partition_properties("1")
            await producer.close()
        assert info["last_enqueued_sequence_number"] == 6 and not info["is_empty"]

        events = await _receive(hub.connection_string, "1", "-1", 7)
        assert [e.body_as_str() for e in events] == ["single-0", *(f"batched-{i}" for i in range(5)), "single-1"]
        assert [e.sequence_number for e in events] == list(range(7))
        offsets = [int(e.offset) for e in events]
        assert offsets == sorted(offsets) and len(set(offsets)) == 7
        assert all(isinstance(e.enqueued_time, dt.datetime) for e in events)

        # from an offset (exclusive, the SDK's default) and from a sequence number (inclusive)
        later = await _receive(hub.connection_string, "1", events[2].offset, 4)
        assert [e.body_as_str() for e in later] == [e.body_as_str() for e in events[3:]]
        from_seq = await _receive(hub.connection_string, "1", 5, 2, starting_position_inclusive=True)
        assert [e.sequence_number for e in from_seq] == [5, 6]

        keyed_partitions = []
        for pid in ("0", "1", "2", "3"):
            async with asyncio.timeout(CALL_S):
                client = EventHubProducerClient.from_connection_string(hub.connection_string, retry_total=0)
                info = await client.get_partition_properties(pid)
                await client.close()
            if pid != "1" and not info["is_empty"]:
                keyed_partitions.append((pid, info["last_enqueued_sequence_number"] + 1))
        if not keyed_partitions:  # the key hashed to partition 1 itself
            keyed = [e for e in await _receive(hub.connection_string, "1", "-1", 13) if e.partition_key]
            assert len(keyed) == 6
        else:
            assert len(keyed_partitions) == 1 and keyed_partitions[0][1] == 6
            keyed = await _receive(hub.connection_string, keyed_partitions[0][0], "-1", 6)
            assert [e.partition_key for e in keyed] == [b"device-42"] * 6
            assert [e.body_as_str() for e in keyed] == [f"keyed-{i}" for i in range(6)]

    asyncio.run(scenario())


def test_enqueued_time_filter_skips_older_events(hub):
    async def scenario():
        producer = EventHubProducerClient.from_connection_string(hub.connection_string, retry_total=0)
        async with asyncio.timeout(CALL_S):
            await producer.send_event(EventData(b"old"), partition_id="3")
            await asyncio.sleep(0.05)
            cut = dt.datetime.now(dt.UTC)
            await asyncio.sleep(0.05)
            await producer.send_event(EventData(b"new"), partition_id="3")
            await producer.close()
        events = await _receive(hub.connection_string, "3", cut, 1)
        assert [e.body_as_str() for e in events] == ["new"]

    asyncio.run(scenario())


def test_a_wrong_key_is_refused_by_cbs(hub):
    good = ConnectionString.parse(hub.connection_string)
    bad = ConnectionString(good.endpoint, good.key_name, "not-the-key", good.entity, emulator=True).render()

    async def scenario():
        producer = EventHubProducerClient.from_connection_string(bad, retry_total=0)
        try:
            async with asyncio.timeout(CALL_S):
                with pytest.raises((AuthenticationError, EventHubError)) as caught:
                    await producer.send_event(EventData(b"x"))
        finally:
            async with asyncio.timeout(CALL_S):
                await producer.close()
        assert "401" in str(caught.value) or "signature" in str(caught.value).lower()

    asyncio.run(scenario())

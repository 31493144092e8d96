"""The Kafka transport beyond the contract: external brokers, keys, and its settings' errors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from support import arrived, need_modules, send_through

need_modules("aiokafka", extra="kafka")

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.partitioner import murmur2  # noqa: E402
from support import need_server  # noqa: E402

from iotbench.transports.base import TransportError  # noqa: E402
from iotbench.transports.kafka import KafkaTransport  # noqa: E402
from iotbench.transports.kafka_client import KafkaReceiver, KafkaSender  # noqa: E402
from iotbench.transports.servers.tansu import start_tansu  # noqa: E402


@pytest.fixture
def tansu(tmp_path):
    try:
        broker = start_tansu(tmp_path / "external")
    except TransportError as exc:
        need_server(str(exc))
    yield broker
    broker.stop()


async def _records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        batches = await consumer.getmany(timeout_ms=2000)
        return [(r.key, r.value) for records in batches.values() for r in records]
    finally:
        await consumer.stop()


async def _send(transport: KafkaTransport, workdir, items: list[tuple[str, bytes]]) -> list[bytes]:
    received, _ = await send_through(transport, workdir, items, timeout_s=10.0)
    return received


@pytest.mark.server
def test_an_external_broker_is_used_and_the_device_id_is_the_key(tansu, tmp_path):
    items = [("b0000-a001-s1", b"one"), ("b0000-a002-s1", b"two")]
    transport = KafkaTransport(bootstrap=tansu.bootstrap, topic="fabrikam", acks="all")
    received = asyncio.run(_send(transport, tmp_path / "cell", items))
    assert sorted(received) == [b"one", b"two"]  # two keys, two partitions: no order between them
    assert not (tmp_path / "cell").exists()  # no broker was started for the cell
    records = asyncio.run(_records(tansu.bootstrap, "fabrikam"))
    assert sorted(records) == sorted((k.encode(), v) for k, v in items)


@pytest.mark.server
def test_a_receiver_on_a_reused_topic_starts_at_its_end(tansu, tmp_path):
    first = asyncio.run(_send(KafkaTransport(bootstrap=tansu.bootstrap), tmp_path / "a", [("d", b"old")]))
    second = asyncio.run(_send(KafkaTransport(bootstrap=tansu.bootstrap), tmp_path / "b", [("d", b"new")]))
    assert first == [b"old"] and second == [b"new"]  # the old record is not this cell's


def test_sasl_without_a_password_variable_says_how_to_give_one(tmp_path, monkeypatch):
    monkeypatch.delenv("IOTBENCH_TEST_KAFKA_PASSWORD", raising=False)
    transport = KafkaTransport(
        bootstrap="127.0.0.1:1",
        security_protocol="SASL_SSL",
        sasl_username="$ConnectionString",
        sasl_password_env="IOTBENCH_TEST_KAFKA_PASSWORD",
    )
    with pytest.raises(TransportError, match="IOTBENCH_TEST_KAFKA_PASSWORD is not set"):
        asyncio.run(transport.start({}))


def test_sasl_password_comes_from_the_environment_and_never_from_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv("IOTBENCH_TEST_KAFKA_PASSWORD", "Endpoint=sb://x/;SharedAccessKey=secret")
    transport = KafkaTransport(
        bootstrap="127.0.0.1:1",
        security_protocol="SASL_SSL",
        create_topic=False,
        sasl_username="$ConnectionString",
        sasl_password_env="IOTBENCH_TEST_KAFKA_PASSWORD",
    )
    asyncio.run(transport.start({}))
    assert transport._settings["sasl_plain_password"].endswith("secret")
    assert "secret" not in repr(transport.options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"acks": 2}, "acks=2"),
        ({"security_protocol": "KERBEROS"}, "KERBEROS"),
        ({"fetch_max_wait_ms": "soon"}, "fetch_max_wait_ms='soon' must be a whole number from 0"),
        ({"fetch_max_wait_ms": -1}, "fetch_max_wait_ms=-1"),
        ({"hole_wait_ms": "never"}, "hole_wait_ms='never' must be a whole number from 0"),
        ({"max_batch_size": 2_000_000}, "max_batch_size=2000000 must be a whole number from 1024 to 1048576 bytes"),
    ],
)
def test_bad_settings_fail_at_start_with_the_fix(options, message, tmp_path):
    with pytest.raises(TransportError, match=message):
        asyncio.run(KafkaTransport(bootstrap="127.0.0.1:1", create_topic=False, **options).start({}))


def test_holes_are_waited_for_on_the_embedded_broker_only():
    assert KafkaTransport(bootstrap="127.0.0.1:1")._hole_wait_ms() == 0
    embedded = KafkaTransport()
    embedded._local = True
    assert embedded._hole_wait_ms() == 2000
    assert KafkaTransport(hole_wait_ms=500)._hole_wait_ms() == 500


def test_fetch_wait_is_short_on_the_embedded_broker_and_kafkas_default_elsewhere():
    # Tansu holds a fetch for the whole wait even when records arrive (transport docstring)
    external = KafkaTransport(bootstrap="127.0.0.1:1")
    assert external._fetch_max_wait_ms() == 500
    embedded = KafkaTransport()
    embedded._local = True  # what start() sets when it connects to a Tansu started for the cell
    assert embedded._fetch_max_wait_ms() == 5
    assert KafkaTransport(fetch_max_wait_ms=20)._fetch_max_wait_ms() == 20


class _StoredLate:
    """One partition as Tansu 0.6 serves it: a fetch returns every stored record from the position on,
    and the batch at offsets ``late`` is stored only after ``fetches`` fetches (``None``: never)."""

    tp = TopicPartition("telemetry", 0)

    def __init__(self, count: int, late: range, fetches: int | None) -> None:
        self.count, self.late, self.fetches_before_stored, self.fetches = count, late, fetches, 0
        self.position = 0

    def stored(self, offset: int) -> bool:
        return offset not in self.late or (
            self.fetches_before_stored is not None and self.fetches > self.fetches_before_stored
        )

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.fetches += 1
        offsets = [o for o in range(self.position, self.count) if self.stored(o)]
        if not offsets:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        await asyncio.sleep(0)
        self.position = offsets[-1] + 1  # what aiokafka does: past the last record fetched
        return {self.tp: [SimpleNamespace(offset=o, value=b"%d" % o) for o in offsets]}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    async def stop(self) -> None:
        pass


async def _receive(consumer: _StoredLate, count: int, hole_wait_s: float = 2.0) -> tuple[list[bytes], KafkaReceiver]:
    received: list[bytes] = []
    receiver = KafkaReceiver(consumer, received.append, {consumer.tp: 0}, hole_wait_s)  # type: ignore[arg-type]
    await arrived(received, count, timeout_s=2.0)
    await receiver.close()
    return received, receiver


def test_a_batch_stored_after_the_next_one_is_still_delivered_in_order():
    # the contract test's flake: offsets 36-37 (one sender's batch) were taken, the other sender's 38-41
    # stored first and fetched, and the consumer's position passed 36-37 for good
    received, receiver = asyncio.run(_receive(_StoredLate(50, late=range(36, 38), fetches=3), 50))
    assert received == [b"%d" % o for o in range(50)]  # once each, in offset order
    assert (receiver.holes_filled, receiver.holes_skipped) == (1, 0)


@pytest.mark.parametrize("hole_wait_s", [0.05, 0.0])
def test_a_hole_that_stays_is_passed_after_the_wait(hole_wait_s):
    # transaction markers, compaction, Event Hubs: offsets that never come (0: passed at once, counted)
    received, receiver = asyncio.run(_receive(_StoredLate(50, late=range(36, 38), fetches=None), 48, hole_wait_s))
    assert received == [b"%d" % o for o in range(50) if o not in (36, 37)]
    assert (receiver.holes_filled, receiver.holes_skipped) == (0, 1)


def test_a_sender_puts_each_key_where_kafkas_default_partitioner_does():
    # the sender keeps each key's partition instead of letting aiokafka hash it on every send
    sent: list[tuple[bytes, int]] = []

    class Producer:
        async def send(self, topic: str, value: bytes, key: bytes, partition: int) -> asyncio.Future:
            sent.append((key, partition))
            acknowledged = asyncio.get_running_loop().create_future()
            acknowledged.set_result(None)
            return acknowledged

    keys = [f"b{b:04d}-a001-s1" for b in range(40)]

    async def send_twice() -> None:
        sender = KafkaSender(Producer(), "telemetry", [0, 1, 2, 3])  # type: ignore[arg-type]
        for key in keys + keys:
            await sender.send(key, b"reading")

    asyncio.run(send_twice())
    java_client = [(k.encode(), (murmur2(k.encode()) & 0x7FFFFFFF) % 4) for k in keys]  # Utils.toPositive(murmur2)
    assert sent == java_client + java_client
    assert len({partition for _, partition in java_client}) == 4

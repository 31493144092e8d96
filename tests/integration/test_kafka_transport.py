"""The Kafka transport beyond the contract: external brokers, keys, and its settings' errors."""

from __future__ import annotations

import asyncio

import pytest
from support import need_modules, send_through

need_modules("aiokafka", extra="kafka")

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from support import need_server  # noqa: E402

from iotbench.transports.base import TransportError  # noqa: E402
from iotbench.transports.kafka import KafkaTransport  # noqa: E402
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
        ({"max_batch_size": 2_000_000}, "max_batch_size=2000000 must be a whole number from 1024 to 1048576 bytes"),
    ],
)
def test_bad_settings_fail_at_start_with_the_fix(options, message, tmp_path):
    with pytest.raises(TransportError, match=message):
        asyncio.run(KafkaTransport(bootstrap="127.0.0.1:1", create_topic=False, **options).start({}))


def test_fetch_wait_is_short_on_the_embedded_broker_and_kafkas_default_elsewhere():
    # Tansu holds a fetch for the whole wait even when records arrive (transport docstring)
    external = KafkaTransport(bootstrap="127.0.0.1:1")
    assert external._fetch_max_wait_ms() == 500
    embedded = KafkaTransport()
    embedded._local = True  # what start() sets when it connects to a Tansu started for the cell
    assert embedded._fetch_max_wait_ms() == 5
    assert KafkaTransport(fetch_max_wait_ms=20)._fetch_max_wait_ms() == 20

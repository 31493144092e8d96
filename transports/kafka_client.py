"""The Kafka transport's two ends over aiokafka: a sender (one producer) and a receiver (a consumer
of every partition that fetches a skipped offset again). ``iotbench.transports.kafka`` opens them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from iotbench.transports.base import Deliver, ReceiverDefaults, stop_task, task_failure

__all__ = ["KafkaReceiver", "KafkaSender", "stop_client"]

CLOSE_TIMEOUT_S = 3.0  # a producer whose broker is gone retries until this
HOLE_RETRY_S = 0.002  # between fetches of a hole: Tansu answers at once, as it has later records

_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer uses when it is given no partitioner


async def stop_client(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    """Close a client within a bound; a broker that is already gone makes this a no-op, not an error."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
    except (KafkaError, OSError, TimeoutError):
        pass
    except asyncio.CancelledError:  # aiokafka's own clean-up can leak a cancellation; ours still propagates
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


class KafkaSender:
    """One producer; a key goes to the partition Kafka's default partitioner gives it (murmur2 of the key).

    Each key's encoding and partition are worked out once and kept: given no partition, aiokafka
    hashes the key in pure Python (murmur2, ~5 us here) and builds the topic's set of available
    partitions on every send. Measured up to its first wait, ``producer.send`` took 8.5-10 us with a
    key and 4-5.5 us given the partition; the sending side's CPU per event fell from ~37 to ~33 us
    at batch 1 (harness-overhead benchmark). A device id is a key: one entry per device (~100 bytes).
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int]) -> None:
        self._producer, self._topic, self._partitions = producer, topic, partitions
        self._produce = producer.send
        self._routes: dict[str, tuple[bytes, int]] = {}  # key -> (encoded key, partition)

    async def send(self, key: str, payload: bytes) -> None:
        route = self._routes.get(key) or self._route(key)
        ack = await self._produce(self._topic, payload, key=route[0], partition=route[1])
        await ack  # the broker's acknowledgement (acks=0: once written to the socket)

    def _route(self, key: str) -> tuple[bytes, int]:
        encoded = key.encode()
        route = self._routes[key] = (encoded, _PARTITIONER(encoded, self._partitions, self._partitions))
        return route

    async def close(self) -> None:
        await stop_client(self._producer)


class KafkaReceiver(ReceiverDefaults):
    """Delivers each partition's records in offset order; a skipped offset is fetched again for ``hole_wait_s``.

    Tansu 0.6 (memory storage) can answer a fetch with a later batch before an earlier one is
    stored: a produce takes its offsets first (raises the partition's high watermark) and stores
    its batch after that, and a fetch in between returns every stored batch from its offset on --
    another connection's later batch -- so the consumer's position jumps over the earlier batch,
    which is stored a moment later and never fetched. The contract test lost such a batch (two
    payloads of one sender, of 500 over two connections) in 3 runs of 170. So when a partition's
    records do not follow on from the last one delivered, the receiver delivers what came before
    the hole, seeks back to it and fetches again until it is filled (one fetch, ~3 ms, in every
    case seen) or ``hole_wait_s`` has passed. Kafka leaves holes for transaction markers and
    compaction, and Event Hubs' Kafka endpoint does not promise consecutive offsets (Spark needs
    ``allowNonConsecutiveOffsets`` there), so elsewhere the wait is 0: holes are passed at once,
    and counted either way (``KafkaTransport.counters``).
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        deliver: Deliver,
        positions: dict[TopicPartition, int],
        hole_wait_s: float,
    ) -> None:
        self._consumer, self._deliver, self._hole_wait_s = consumer, deliver, hole_wait_s
        self._next = positions  # per partition: the offset its next record should have
        self._holes: dict[TopicPartition, tuple[int, float]] = {}  # a partition's hole: where, since when
        self.holes_filled = self.holes_skipped = 0
        self.error: str | None = None
        self._task = asyncio.create_task(self._read(), name="kafka-receiver")

    async def _read(self) -> None:
        consumer, deliver, following, holes = self._consumer, self._deliver, self._next, self._holes
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
                waiting = False
                for tp, records in batches.items():
                    first = following[tp]
                    if not holes and records[0].offset == first and records[-1].offset == first + len(records) - 1:
                        for record in records:
                            deliver(record.value)
                        following[tp] = first + len(records)
                    else:
                        waiting |= self._across_holes(tp, records)
                if waiting:
                    await asyncio.sleep(HOLE_RETRY_S)
        except KafkaError as exc:
            self.error = f"consumer failed: {exc!r}"

    def _across_holes(self, tp: TopicPartition, records: list[Any]) -> bool:
        """Deliver ``records`` up to a hole and seek back to it (True), or all of them (False)."""
        expected = self._next[tp]
        for record in records:
            hole = self._holes.get(tp)
            if record.offset > expected:
                now = time.monotonic()
                if hole is None or hole[0] != expected:
                    hole = self._holes[tp] = (expected, now)
                if now - hole[1] < self._hole_wait_s:
                    self._next[tp] = expected
                    self._consumer.seek(tp, expected)  # drops the records fetched past the hole
                    return True
                del self._holes[tp]
                self.holes_skipped += 1
            elif hole is not None and hole[0] == record.offset:
                del self._holes[tp]
                self.holes_filled += 1
            self._deliver(record.value)
            expected = record.offset + 1  # also below it: aiokafka reset the position (out of range)
        self._next[tp] = expected
        return False

    def failure(self) -> str | None:
        return task_failure(self._task, self.error)

    async def close(self) -> None:
        await stop_task(self._task)
        await stop_client(self._consumer)

"""Kafka acks=1 to Tansu: aiokafka's producer with the kafka transport's settings (acks=1, linger 5 ms,
256 KB batches), up to ``WINDOW`` acknowledgements outstanding; an assigned aiokafka consumer counts."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from iotbench.studies.direct_loops.base import (
    ACK_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    POLL_S,
    WINDOW,
    DirectLoop,
    Ready,
    Stop,
    Timeline,
    run_async,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.tansu import Tansu

__all__ = ["PRODUCER"]

TOPIC, PARTITIONS = "telemetry", 4  # the kafka transport's defaults


async def create_topic(endpoint: Endpoint) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=str(endpoint))
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await admin.start()
        try:
            await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
        finally:
            await admin.close()


async def send(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    # the kafka transport's producer: acks=1, linger 5 ms, 256 KB batches
    producer = AIOKafkaProducer(
        bootstrap_servers=str(endpoint), acks=1, linger_ms=5, max_batch_size=262_144, client_id="direct-sender"
    )
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await producer.start()
    try:
        encoded = [k.encode() for k in keys]
        pending: deque[asyncio.Future[Any]] = deque()
        n, sent, acked, produce = len(encoded), 0, 0, producer.send
        while time.monotonic() < until:
            pending.append(await produce(TOPIC, payload, key=encoded[sent % n]))
            sent += 1
            if len(pending) >= WINDOW:
                await pending.popleft()
                acked += 1
                timeline.sample(acked)
        async with asyncio.timeout(ACK_TIMEOUT_S):
            while pending:
                await pending.popleft()
                acked += 1
        timeline.close(acked)
        return sent, acked
    finally:
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await producer.stop()


async def receive(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=str(endpoint), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await consumer.start()
        partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)  # a group join takes 5-23 s on Tansu (FACTS.md)
        await consumer.seek_to_beginning(*partitions)
    ready()
    count = 0
    try:
        while not stop(count):
            batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000), max_records=10_000)
            count += sum(len(records) for records in batches.values())
            timeline.sample(count)
        timeline.close(count)
        return count
    finally:
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await consumer.stop()


PRODUCER = DirectLoop(
    f"Kafka acks=1 -> Tansu: aiokafka producer, {WINDOW:,} acks outstanding",
    Tansu,
    partial(run_async, send),
    partial(run_async, receive),
    partial(run_async, create_topic),
)

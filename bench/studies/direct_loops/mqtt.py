"""MQTT: paho on a select loop of its own (never ``loop_start``: its thread halves throughput, FACTS.md).

``mqtt-qos0`` sends as fast as the socket takes the messages; ``mqtt-qos1`` keeps up to ``WINDOW``
PUBACKs outstanding. A paho subscriber counts, to the mqtt transport's topics on mosquitto.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from iotbench.studies.direct_loops.base import (
    ACK_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    POLL_S,
    WINDOW,
    DirectLoop,
    DirectLoopError,
    Ready,
    Stop,
    Timeline,
    bounded,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.mosquitto import Mosquitto

__all__ = ["QOS0", "QOS1"]

TOPIC = "devices/{key}/telemetry"  # the mqtt transport's topics


def _connect(endpoint: Endpoint, role: str) -> Any:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"direct-{role}-{os.getpid()}")
    client.max_inflight_messages_set(0)  # the loop keeps its own window: paho's rescans its queue per PUBACK
    client.max_queued_messages_set(0)
    client.connect_timeout = CONNECT_TIMEOUT_S
    answers: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    _pump_until(client, lambda: bool(answers), "CONNACK")
    if answers[0].is_failure:
        raise DirectLoopError(f"{endpoint} refused the connection: {answers[0]}")
    return client


def _pump(client: Any, timeout: float, progress: Callable[[], int] | None = None) -> None:
    """One select on the socket, then read and write. paho reads one packet per ``loop_read`` unless
    messages are in flight: with ``progress`` (a count that grows per packet) it reads on while it grows."""
    sock = client.socket()
    if sock is None:
        raise DirectLoopError("the broker closed the connection")
    readable, writable, _ = select.select([sock], [sock] if client.want_write() else [], [], timeout)
    if readable:
        for _ in range(256 if progress else 1):
            before = progress() if progress else 0
            if client.loop_read() != 0:
                raise DirectLoopError("the connection to the broker broke")
            if not progress or progress() == before:
                break
    if writable or client.want_write():
        client.loop_write()


def _pump_until(client: Any, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not done():
        bounded(deadline, what)
        _pump(client, POLL_S)


def send(
    qos: int, endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    client = _connect(endpoint, "sender")
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1

    if qos:
        client.on_publish = on_publish
    topics = [TOPIC.format(key=k) for k in keys]
    publish, n, sent = client.publish, len(topics), 0
    while time.monotonic() < until:
        # QoS 1: up to WINDOW unacknowledged; QoS 0: as long as the socket takes them (paho queues the rest)
        room = WINDOW - (sent - acked) if qos else (0 if client.want_write() else 100)
        for _ in range(room):
            publish(topics[sent % n], payload, qos)
            sent += 1
        _pump(client, POLL_S if room <= 0 else 0.0)
        timeline.sample(acked if qos else sent)
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while (acked < sent) if qos else client.want_write():
        bounded(deadline, f"PUBACK for {sent - acked} of {sent} messages")
        _pump(client, POLL_S)
    timeline.close(acked if qos else sent)
    client.disconnect()
    return sent, acked if qos else sent


def receive(qos: int, endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    client = _connect(endpoint, "receiver")
    count, subscribed = 0, []

    def on_message(*_: Any) -> None:
        nonlocal count
        count += 1

    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.append(True)
    client.subscribe(TOPIC.format(key="+"), qos)
    _pump_until(client, lambda: bool(subscribed), "SUBACK")
    ready()
    while not stop(count):
        _pump(client, POLL_S, lambda: count)
        timeline.sample(count)
    timeline.close(count)
    client.disconnect()
    return count


QOS0 = DirectLoop(
    "MQTT QoS 0 -> mosquitto: paho on its own select loop", Mosquitto, partial(send, 0), partial(receive, 0)
)
QOS1 = DirectLoop(
    f"MQTT QoS 1 -> mosquitto: paho on its own select loop, window {WINDOW:,}",
    Mosquitto,
    partial(send, 1),
    partial(receive, 1),
)

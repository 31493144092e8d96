"""The bridge of the bridged MQTT path: broker -> this process -> Event Hubs, run as a server of the cell.

``python -m iotbench.transports.bridges.mqtt_eventhubs --mqtt-port P --hub-address sb://127.0.0.1:Q``
(the hub's connection string in ``IOTBENCH_BRIDGE_EVENTHUB``: never on a command line, where ``ps``
and logs show it) subscribes to ``devices/+/telemetry`` at QoS 1 -- or joins the shared subscription
-- and forwards each message's payload to the hub with the azure-eventhub SDK's producer, as the
self-hosted "broker plus bridge" design of an MQTT fleet would (a gateway's batch stays one event).

- Batching: what arrived while the previous round was being sent goes in the next round (a group
  commit), at most ``ROUND_MAX`` messages; a round is one ``EventDataBatch`` per partition (more when
  one is full), sent to the partitions side by side.
- Order: a device's key (the topic's middle) hashes to a partition (crc32, as the ``eventhubs``
  transport's ``partitioning = "id"``), so a device stays on one partition and keeps its order. A
  partition key per event would do the same, but a batch carries one key: at ~1 reading per device
  per round that is one publication per reading (~500 events/s measured with the SDK), not a bridge.
- At least once: a message's PUBACK goes back only when every batch of its round was accepted;
  a refused or timed-out batch is sent again (each try bounded by ``--call-timeout``), so a batch
  the hub took before its answer was lost arrives twice -- the harness counts duplicates, nothing
  here hides them. One round at a time: a retried batch can never be overtaken on its partition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.eventhubs.producer import open_partition_links
from iotbench.transports.mqtt_client import MqttConnection
from iotbench.transports.sas import describe_failure
from iotbench.transports.servers.bridge import CONNECTION_ENV, READY_FILE, STATS_FILE
from iotbench.transports.tls import client_context

__all__ = ["Bridge", "main"]

ROUND_MAX = 1000  # messages per round: mosquitto sends us at most 1,000 unacknowledged (max_inflight_messages)
RETRY_S = 0.2  # the pause before a batch is sent again; ServerBusy waits as the SDK does
BUSY_S = 4.0

log = logging.getLogger("iotbench.bridge")


def _device(topic: bytes) -> bytes:
    """``devices/{key}/telemetry`` -> ``key`` (the whole topic when it has another shape)."""
    parts = topic.split(b"/")
    return parts[1] if len(parts) == 3 else topic


class Bridge:
    """One MQTT subscription, one Event Hubs producer, rounds between them."""

    def __init__(self, args: argparse.Namespace, connection_string: str) -> None:
        from azure.eventhub import TransportType
        from azure.eventhub.aio import EventHubProducerClient

        self.args = args
        self.timeout = float(args.call_timeout)
        sdk: dict[str, Any] = {}
        if args.hub_ca:  # AMQPS to a local port, trusting the local CA (as the eventhubs transport does)
            sdk = {
                "custom_endpoint_address": args.hub_address,
                "transport_type": TransportType.Amqp,
                "connection_verify": args.hub_ca,
            }
        self.producer = EventHubProducerClient.from_connection_string(connection_string, retry_total=0, **sdk)
        self.pending: list[tuple[bytes, bytes, int]] = []  # (device key, payload, packet id), in arrival order
        self.wake = asyncio.Event()
        self.partitions: list[str] = []
        self.stats = {"received": 0, "forwarded": 0, "publications": 0, "rounds": 0, "retries": 0, "acked": 0}
        self.mqtt: MqttConnection | None = None

    async def _bounded(self, what: str, awaitable: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except TimeoutError:
            raise TransportError(f"bridge: {what} got no answer within {self.timeout:g} s") from None

    def _arrived(self, topic: bytes, payload: bytes, packet_id: int) -> None:
        self.pending.append((_device(topic), payload, packet_id))
        self.stats["received"] += 1
        self.wake.set()

    async def open(self) -> None:
        self.partitions = await self._bounded("get_partition_ids", self.producer.get_partition_ids())
        # a bridge that runs for months has its links open: none is opened by the first readings
        await self._bounded("open partition links", open_partition_links(self.producer, self.partitions, self.timeout))
        a = self.args
        ssl_context = client_context(a.mqtt_ca) if a.mqtt_ca else None
        endpoint = Endpoint("mqtts" if a.mqtt_ca else "mqtt", a.mqtt_host, a.mqtt_port, ca_file=a.mqtt_ca or None)
        conn = self.mqtt = MqttConnection(endpoint, False, self.timeout, None)
        conn.on_publish = self._arrived
        await conn.open_session(f"iotbench-bridge-{os.getpid()}", ssl_context, False)
        await conn.subscribe(a.subscription, 1)

    async def run(self, stop: asyncio.Event) -> None:
        conn = self.mqtt
        assert conn is not None
        stopping = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            waking = asyncio.ensure_future(self.wake.wait())
            await asyncio.wait([waking, stopping], return_when=asyncio.FIRST_COMPLETED)
            waking.cancel()
            if conn.failure is not None:
                raise conn.failure
            self.wake.clear()
            while self.pending:
                taken, self.pending = self.pending[:ROUND_MAX], self.pending[ROUND_MAX:]
                await self._forward(taken, stop)
                conn.acknowledge([packet_id for _, _, packet_id in taken])
                self.stats["acked"] += len(taken)
        stopping.cancel()

    async def _forward(self, taken: list[tuple[bytes, bytes, int]], stop: asyncio.Event) -> None:
        """Every message of the round accepted by the hub (each partition's batches in order)."""
        groups: dict[str, list[bytes]] = {}
        n = len(self.partitions)
        for device, payload, _ in taken:
            groups.setdefault(self.partitions[zlib.crc32(device) % n], []).append(payload)
        await asyncio.gather(*(self._send_partition(pid, payloads, stop) for pid, payloads in groups.items()))
        self.stats["rounds"] += 1
        self.stats["forwarded"] += len(taken)

    async def _send_partition(self, partition_id: str, payloads: list[bytes], stop: asyncio.Event) -> None:
        from azure.eventhub import EventData

        i = 0
        while i < len(payloads):
            batch = await self._bounded("create_batch", self.producer.create_batch(partition_id=partition_id))
            start = i
            while i < len(payloads):
                try:
                    batch.add(EventData(payloads[i]))
                except ValueError:  # full: send what it holds, the rest goes in the next
                    if i == start:
                        raise TransportError(f"bridge: a {len(payloads[i])} B message exceeds a publication") from None
                    break
                i += 1
            await self._send(batch, stop)

    async def _send(self, batch: Any, stop: asyncio.Event) -> None:
        """Send until accepted: the message is not acknowledged to the broker before (at least once)."""
        while True:
            try:
                await self._bounded("send_batch", self.producer.send_batch(batch))
                self.stats["publications"] += 1
                return
            except Exception as exc:  # noqa: BLE001 - refused, busy or no answer: send again
                why = describe_failure(exc) if not isinstance(exc, TransportError) else str(exc)
                if stop.is_set():  # told to stop: what is unacknowledged stays with the broker
                    raise TransportError(f"bridge: stopped while a batch was refused ({why})") from None
                self.stats["retries"] += 1
                log.warning("send to partition refused (%s); sending again", why)
                busy = "server-busy" in why or "ServerBusy" in why
                await asyncio.sleep(BUSY_S if busy else RETRY_S)

    async def close(self) -> None:
        if self.mqtt is not None:
            await self.mqtt.close()
        try:
            await self._bounded("close", self.producer.close())
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mqtt_eventhubs_bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--mqtt-ca", default="", help="the broker's CA (MQTT over TLS)")
    parser.add_argument("--subscription", default="devices/+/telemetry")
    parser.add_argument("--hub-address", default="", help="sb://host:port of a local AMQPS endpoint")
    parser.add_argument("--hub-ca", default="", help="the local endpoint's CA")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="bound on every call, s")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, connection_string: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(args, connection_string)
    started = time.process_time()
    try:
        await bridge.open()
        log.info("forwarding %s on port %d to %d partitions", args.subscription, args.mqtt_port, len(bridge.partitions))
        Path(READY_FILE).write_text("ready\n")
        await bridge.run(stop)
    finally:
        await bridge.close()
        log.info("stopping; totals: %s; CPU %.3f s", bridge.stats, time.process_time() - started)
        Path(STATS_FILE).write_text(json.dumps(bridge.stats))  # the cwd is the work dir: the starter reads it


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    args = _parse(argv)
    connection_string = os.environ.get(CONNECTION_ENV)
    if not connection_string:
        print(f"mqtt_eventhubs_bridge: set {CONNECTION_ENV} to the hub's connection string", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, connection_string))
    except TransportError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

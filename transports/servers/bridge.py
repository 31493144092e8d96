"""The MQTT -> Event Hubs bridge as a server of the cell, started after the broker and the hub.

The bridge (``iotbench.transports.bridges.mqtt_eventhubs``, run with ``python -m``: a client of both,
so it lives beside the clients and this launcher only names it) needs where the two servers it sits
between listen: ``Upstream`` wraps each and keeps the ``Endpoint`` it returned, and ``Bridge`` reads
them when the harness starts it -- the harness starts a cell's servers in the order named.
The hub's connection string (it holds the key) goes to the process in its environment.
Its process is under the cell's ``server/bridge`` folder, so the runner counts its CPU as a server's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import Server, ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess

__all__ = ["Bridge", "Upstream", "CONNECTION_ENV", "READY_FILE", "STATS_FILE"]

MODULE = "iotbench.transports.bridges.mqtt_eventhubs"
CONNECTION_ENV = "IOTBENCH_BRIDGE_EVENTHUB"  # the hub's connection string: never on a command line
READY_FILE = "bridge-ready"  # the bridge writes it once subscribed and connected to the hub
STATS_FILE = "bridge-stats.json"  # ... and its counts when it stops


class Upstream:
    """A server whose endpoint another server of the cell needs: ``Upstream(Mosquitto()).endpoint``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.name = server.name
        self.endpoint: Endpoint | None = None

    def start(self, workdir: Path) -> Endpoint:
        self.endpoint = self.server.start(workdir)
        return self.endpoint

    def stop(self) -> None:
        self.server.stop()

    def counters(self) -> dict[str, int]:
        return self.server.counters()


class Bridge(ServerDefaults):
    """``Bridge(broker, hub, subscription)``: forwards the broker's device topics to the hub."""

    name = "bridge"

    def __init__(self, broker: Upstream, hub: Upstream, subscription: str, call_timeout_s: float = 10.0) -> None:
        self.broker, self.hub, self.subscription, self.call_timeout_s = broker, hub, subscription, call_timeout_s
        self._process: ServerProcess | None = None
        self._workdir: Path | None = None

    def start(self, workdir: Path) -> Endpoint:
        broker, hub = self.broker.endpoint, self.hub.endpoint
        if broker is None or hub is None:
            raise TransportError("bridge: start the broker and the hub before the bridge")
        workdir = self._workdir = Path(workdir).resolve()
        argv = [
            sys.executable,
            "-m",
            MODULE,
            "--mqtt-host",
            broker.host,
            "--mqtt-port",
            str(broker.port),
            "--subscription",
            self.subscription,
            "--call-timeout",
            f"{self.call_timeout_s:g}",
        ]
        if broker.ca_file:
            argv += ["--mqtt-ca", broker.ca_file]
        if hub.ca_file:
            argv += ["--hub-address", f"sb://{hub.host}:{hub.port}", "--hub-ca", hub.ca_file]
        ready = workdir / READY_FILE
        ready.unlink(missing_ok=True)
        self._process = ServerProcess(
            "bridge",
            argv,
            workdir=workdir,
            port=0,
            env={CONNECTION_ENV: hub.extras["connection_string"]},
            ready=ready.exists,
            ready_timeout=3 * self.call_timeout_s,
        ).start()
        return Endpoint("bridge", LOOPBACK, 0)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def counters(self) -> dict[str, int]:
        """What the bridge counted (``forwarded``, ``publications``, ``retries``, ...), as ``bridge_*``."""
        if self._workdir is None:
            return {}
        try:
            stats = json.loads((self._workdir / STATS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {f"bridge_{name}": int(value) for name, value in stats.items()}

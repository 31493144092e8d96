"""amqtt (a pure-Python MQTT 3.1.1 broker from PyPI) as the embedded fallback broker.

It runs where mosquitto is not installed, in its own process (so its CPU shows up
as a server's, not as the harness's). The packet and event logger plugins of its
default configuration are left out: they log every packet. amqtt speaks neither
MQTT 5 nor shared subscriptions; it does speak MQTT over WebSockets (``websockets``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port

__all__ = ["start_amqtt", "Amqtt"]

INSTALL_HINT = "pip install 'iotbench[mqtt]'"


def _config(port: int, websockets: bool) -> str:
    return (
        "listeners:\n"
        "  default:\n"
        f"    type: {'ws' if websockets else 'tcp'}\n"
        f"    bind: {LOOPBACK}:{port}\n"
        "    max_connections: 0\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )


def start_amqtt(workdir: Path, *, websockets: bool = False, ready_timeout: float = 30.0) -> ServerProcess:
    """A started amqtt broker in its own Python process; ``server.port`` is its listener
    (MQTT over WebSockets if ``websockets``)."""
    if importlib.util.find_spec("amqtt") is None:
        raise TransportError(f"amqtt is not installed: {INSTALL_HINT}")
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "amqtt.yaml"
    conf.write_text(_config(port, websockets))
    argv = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
    return ServerProcess("amqtt", argv, workdir=workdir, port=port, ready_timeout=ready_timeout).start()


class Amqtt(ServerDefaults):
    """``Amqtt(websockets=True).start(workdir)`` -> its Endpoint (``ws`` when over WebSockets)."""

    name = "amqtt"

    def __init__(self, *, websockets: bool = False) -> None:
        self.websockets = websockets
        self._process: ServerProcess | None = None

    def start(self, workdir: Path) -> Endpoint:
        self._process = start_amqtt(workdir, websockets=self.websockets)
        return Endpoint("ws" if self.websockets else "mqtt", LOOPBACK, self._process.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

"""mosquitto (Debian's MQTT broker) on a free loopback port, for the MQTT transport.

The configuration is written next to the log in the server's work folder. Two
settings matter for a benchmark: mosquitto drops QoS 1 messages for a subscriber
that falls behind once ``max_queued_messages`` (default 1,000) is reached -- the
harness would count those as honest losses although they are a broker setting --
and it only keeps 20 QoS 1 messages in flight towards a subscriber, which caps the
consumer. Both are raised. Run as root, mosquitto switches to the ``mosquitto``
user and then cannot read a private temp folder: ``user root`` keeps it as is
(ignored when not run as root).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port, require_binary
from iotbench.transports.servers.tls import local_ca

__all__ = ["start_mosquitto", "answers_mqtt", "Mosquitto"]

# CONNECT (MQTT 3.1.1, clean session, keep-alive 60 s, empty client id) and DISCONNECT
_CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
_DISCONNECT = b"\xe0\x00"

INSTALL_HINT = "apt-get install mosquitto (scripts/setup does it)"


def _config(port: int, tls: dict[str, str] | None) -> str:
    lines = [
        f"listener {port} {LOOPBACK}",
        "allow_anonymous true",
        "persistence false",
        "user root",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "max_queued_messages 0",  # 0 = no limit: see the module docstring
        "max_queued_bytes 0",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",
    ]
    if tls:
        lines += [f"certfile {tls['certfile']}", f"keyfile {tls['keyfile']}"]
    return "\n".join(lines) + "\n"


def answers_mqtt(port: int, tls: bool = False, timeout: float = 0.5) -> bool:
    """Whether 127.0.0.1:port completes an MQTT CONNECT/CONNACK (over TLS if asked).

    An open port is not enough: mosquitto listens before it loads its certificate,
    and exits if that fails -- a port check would call that broker ready.
    """
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # probing, not trusting
                sock = context.wrap_socket(raw)
            sock.sendall(_CONNECT)
            reply = sock.recv(4)
            sock.sendall(_DISCONNECT)
            return reply[:1] == b"\x20"
    except (OSError, ssl.SSLError):
        return False


def start_mosquitto(workdir: Path, *, tls: dict[str, str] | None = None, ready_timeout: float = 15.0) -> ServerProcess:
    """A started mosquitto; ``server.port`` is its listener, ``server.stop()`` ends it.

    ``tls`` (``certfile``, ``keyfile`` paths) makes the listener speak MQTT over TLS.
    """
    binary = require_binary("mosquitto", INSTALL_HINT)
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(_config(port, tls))
    return ServerProcess(
        "mosquitto",
        [binary, "-c", str(conf)],
        workdir=workdir,
        port=port,
        ready=lambda: answers_mqtt(port, tls=bool(tls)),
        ready_timeout=ready_timeout,
    ).start()


class Mosquitto(ServerDefaults):
    """``Mosquitto(tls=True).start(workdir)`` -> its Endpoint (``mqtts``, trusting a fresh local CA)."""

    name = "mosquitto"

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self._process: ServerProcess | None = None

    def start(self, workdir: Path) -> Endpoint:
        workdir = Path(workdir).resolve()
        ca = local_ca(workdir / "tls") if self.tls else None
        files = {"certfile": str(ca.cert), "keyfile": str(ca.key)} if ca else None
        self._process = start_mosquitto(workdir, tls=files)
        return Endpoint("mqtts" if ca else "mqtt", LOOPBACK, self._process.port, ca_file=str(ca.ca) if ca else None)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

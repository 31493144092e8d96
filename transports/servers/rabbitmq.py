"""RabbitMQ 3.10 (Debian) with its AMQP 1.0 plugin, on free loopback ports, for the AMQP transport.

Three things make it leave nothing behind:

- the versioned ``sbin/rabbitmq-server`` script runs directly (the ``/usr/sbin``
  wrapper insists on the ``rabbitmq`` user and the system folders), with every
  folder, port and the node name in the environment, ``HOME`` included (the Erlang
  cookie lands there, and ``rabbitmqctl`` must find the same one to stop the node);
- Erlang's port mapper ``epmd`` normally starts on first use and detaches from its
  parent, outliving the broker: here it is started first, in the foreground, as a
  server of its own on its own port, so it is stopped by pid like the broker; and
  every Erlang program started here (broker, ``rabbitmqctl``) runs with
  ``-start_epmd false``, so one that finds no epmd (a Ctrl-C mid-start, a stop racing
  the start) fails instead of spawning a detached ``epmd -daemon`` that outlives the run;
- the broker is stopped with ``rabbitmqctl stop`` (a clean shutdown), then by pid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port, port_open, require_binary
from iotbench.transports.servers.tls import local_ca

__all__ = ["RabbitMQ", "start_rabbitmq", "RabbitMQServer"]

INSTALL_HINT = "apt-get install rabbitmq-server (scripts/setup does it)"
SBIN_GLOB = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"


@dataclass
class RabbitMQ:
    """A running broker and the epmd it registered with; ``port`` speaks AMQP."""

    broker: ServerProcess
    epmd: ServerProcess
    tls_port: int | None = None  # AMQP over TLS, when started with ``tls``

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def pids(self) -> list[int]:
        return [p for p in (self.broker.pid, self.epmd.pid) if p is not None]

    def stop(self) -> None:
        try:
            self.broker.stop()
        finally:
            self.epmd.stop()


def _sbin() -> Path:
    found = sorted(Path("/").glob(SBIN_GLOB.lstrip("/")))
    if not found:
        raise TransportError(f"rabbitmq-server is not installed: {INSTALL_HINT}")
    return found[-1]


def start_rabbitmq(workdir: Path, *, tls: dict[str, str] | None = None, ready_timeout: float = 60.0) -> RabbitMQ:
    """A started RabbitMQ with the AMQP 1.0 plugin on ``.port`` (guest/guest, loopback allowed).

    ``tls`` (``certfile``, ``keyfile`` paths) adds a TLS listener on ``.tls_port``.
    """
    sbin = _sbin()
    epmd_binary = require_binary("epmd", INSTALL_HINT)
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    amqp_port, dist_port, epmd_port = free_port(), free_port(), free_port()
    node = f"iotbench-{amqp_port}@localhost"
    (workdir / "enabled_plugins").write_text("[rabbitmq_amqp1_0].\n")
    conf = ["loopback_users = none", "vm_memory_high_watermark.relative = 0.2", "disk_free_limit.absolute = 50MB"]
    tls_port = free_port() if tls else None
    if tls:
        conf += [
            f"listeners.ssl.default = {LOOPBACK}:{tls_port}",
            f"ssl_options.certfile = {tls['certfile']}",
            f"ssl_options.keyfile = {tls['keyfile']}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        ]
    (workdir / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
    env = {
        "HOME": str(workdir),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_FLAGS": "-start_epmd false",  # never a detached epmd: ours is started (and stopped) above
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    epmd = ServerProcess(
        "epmd",
        [epmd_binary, "-port", str(epmd_port), "-address", LOOPBACK],
        workdir=workdir,
        port=epmd_port,
        env=env,
        ready_timeout=10.0,
    ).start()
    broker = ServerProcess(
        "rabbitmq",
        [str(sbin / "rabbitmq-server")],
        workdir=workdir,
        port=amqp_port,
        env=env,
        ready_timeout=ready_timeout,
        stop_argv=[str(sbin / "rabbitmqctl"), "-n", node, "stop"],
        ready=lambda: port_open(amqp_port) and (tls_port is None or port_open(tls_port)),
    )
    try:
        broker.start()
    except BaseException:
        epmd.stop()
        raise
    return RabbitMQ(broker, epmd, tls_port)


class RabbitMQServer(ServerDefaults):
    """``RabbitMQServer(tls=True).start(workdir)`` -> its AMQP 1.0 Endpoint (guest/guest, loopback)."""

    name = "rabbitmq"

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self.running: RabbitMQ | None = None

    def start(self, workdir: Path) -> Endpoint:
        workdir = Path(workdir).resolve()
        ca = local_ca(workdir / "tls") if self.tls else None
        self.running = start_rabbitmq(workdir, tls={"certfile": str(ca.cert), "keyfile": str(ca.key)} if ca else None)
        port = self.running.tls_port if ca and self.running.tls_port else self.running.port
        return Endpoint("amqps" if ca else "amqp", LOOPBACK, port, "guest", "guest", ca_file=str(ca.ca) if ca else None)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()

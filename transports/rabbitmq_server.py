"""RabbitMQ 3.10 (Debian) with its AMQP 1.0 plugin, on free loopback ports, for the AMQP transport.

Three things make it leave nothing behind:

- the versioned ``sbin/rabbitmq-server`` script runs directly (the ``/usr/sbin``
  wrapper insists on the ``rabbitmq`` user and the system folders), with every
  folder, port and the node name in the environment, ``HOME`` included (the Erlang
  cookie lands there, and ``rabbitmqctl`` must find the same one to stop the node);
- Erlang's port mapper ``epmd`` normally starts on first use and detaches from its
  parent, outliving the broker: here it is started first, in the foreground, as a
  server of its own on its own port, so it is stopped by pid like the broker;
- the broker is stopped with ``rabbitmqctl stop`` (a clean shutdown), then by pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.servers import LOOPBACK, ServerProcess, free_port, require_binary

__all__ = ["RabbitMQ", "start_rabbitmq"]

INSTALL_HINT = "apt-get install rabbitmq-server (scripts/setup does it)"
SBIN_GLOB = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"


@dataclass
class RabbitMQ:
    """A running broker and the epmd it registered with; ``port`` speaks AMQP."""

    broker: ServerProcess
    epmd: ServerProcess

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


def start_rabbitmq(workdir: Path, *, ready_timeout: float = 60.0) -> RabbitMQ:
    """A started RabbitMQ with the AMQP 1.0 plugin on ``.port`` (guest/guest, loopback allowed)."""
    sbin = _sbin()
    epmd_binary = require_binary("epmd", INSTALL_HINT)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    amqp_port, dist_port, epmd_port = free_port(), free_port(), free_port()
    node = f"iotbench-{amqp_port}@localhost"
    (workdir / "enabled_plugins").write_text("[rabbitmq_amqp1_0].\n")
    (workdir / "rabbitmq.conf").write_text(
        "loopback_users = none\n"
        "vm_memory_high_watermark.relative = 0.2\n"
        "disk_free_limit.absolute = 50MB\n"
    )
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
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    epmd = ServerProcess("epmd", [epmd_binary, "-port", str(epmd_port), "-address", LOOPBACK],
                         workdir=workdir, port=epmd_port, env=env, ready_timeout=10.0).start()
    broker = ServerProcess(
        "rabbitmq", [str(sbin / "rabbitmq-server")], workdir=workdir, port=amqp_port, env=env,
        ready_timeout=ready_timeout, stop_argv=[str(sbin / "rabbitmqctl"), "-n", node, "stop"],
    )
    try:
        broker.start()
    except BaseException:
        epmd.stop()
        raise
    return RabbitMQ(broker, epmd)


def rabbitmq_installed() -> bool:
    """Whether Debian's rabbitmq-server (with its versioned sbin folder) is here."""
    return bool(sorted(Path("/").glob(SBIN_GLOB.lstrip("/")))) and os.access("/usr/bin/epmd", os.X_OK)

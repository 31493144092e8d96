"""Checkpoints the Azure way: a blob checkpoint store, on Azurite locally.

``EventHubConsumerClient`` keeps partition ownership and checkpoints in blobs
(``azure-eventhub-checkpointstoreblob-aio``). Locally the store is Azurite, the Azure
Storage emulator (npm ``azurite@3.35.0``, installed by ``scripts/setup`` into
``.tools``; 3.36+ needs Node 22), started per cell through ``ServerProcess`` with the
two flags it needs here (``--disableTelemetry`` so it does not phone home,
``--skipApiVersionCheck`` so it accepts the current SDK). With
``IOTBENCH_CHECKPOINT_STORAGE_CONNECTION_STRING`` set, a real storage account is used
instead (never logged).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from iotbench.transports.base import TransportError
from iotbench.transports.servers import LOOPBACK, ServerProcess, free_port

__all__ = ["LocalAzurite", "STORAGE_ENV", "checkpoint_store"]

STORAGE_ENV = "IOTBENCH_CHECKPOINT_STORAGE_CONNECTION_STRING"
INSTALL = "run scripts/setup (npm install --prefix .tools azurite@3.35.0)"
# Azurite's fixed development account: public, documented, and accepted by nothing but the emulator
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azurite_blob() -> str:
    local = Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / ".bin" / "azurite-blob"
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
        argv = [_azurite_blob(), "--blobHost", LOOPBACK, "--blobPort", str(self.port), "--location", str(data),
                "--disableTelemetry", "--skipApiVersionCheck", "--silent"]
        self.process = ServerProcess("azurite", argv, workdir=self.workdir, port=self.port, ready_timeout=60.0)

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
                f"BlobEndpoint=http://{LOOPBACK}:{self.port}/{DEV_ACCOUNT};")

    def start(self) -> "LocalAzurite":
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> "LocalAzurite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def checkpoint_store(connection_string: str, container: str, timeout_s: float) -> Any:
    """A ``BlobCheckpointStore`` on ``container``, created if missing (bounded by ``timeout_s``)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
    from azure.storage.blob.aio import ContainerClient

    client = ContainerClient.from_connection_string(connection_string, container)
    try:
        async with asyncio.timeout(timeout_s):
            await client.create_container()
    except ResourceExistsError:
        pass
    except TimeoutError:
        raise TransportError(f"the checkpoint storage did not answer within {timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - the reason, with nothing of the connection string
        raise TransportError(f"cannot create checkpoint container {container!r}: {type(exc).__name__}") from None
    finally:
        await client.close()
    return BlobCheckpointStore.from_connection_string(connection_string, container)


def storage_from_env() -> str | None:
    return os.environ.get(STORAGE_ENV, "").strip() or None

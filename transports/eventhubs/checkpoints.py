"""Checkpoints the Azure way: a blob checkpoint store, on Azurite locally.

``EventHubConsumerClient`` keeps partition ownership and checkpoints in blobs
(``azure-eventhub-checkpointstoreblob-aio``). Locally the store is Azurite, the Azure
Storage emulator, started per cell (``servers.azurite``). With
``IOTBENCH_CHECKPOINT_STORAGE_CONNECTION_STRING`` set, a real storage account is used
instead (never logged).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from iotbench.transports.base import TransportError

__all__ = ["STORAGE_ENV", "checkpoint_store", "storage_from_env"]

STORAGE_ENV = "IOTBENCH_CHECKPOINT_STORAGE_CONNECTION_STRING"


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

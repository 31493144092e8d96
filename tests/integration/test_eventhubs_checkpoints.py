"""The consumer side as Azure does it: checkpoints in a blob store (Azurite), after the cold store.

The checkpoint must not move when events are merely delivered, only once the cold
store says they are durable (``mark`` at seal, ``durable`` at publish); a consumer
that starts again from the store resumes after the checkpoint.
"""

from __future__ import annotations

import asyncio

import pytest
from support import need_modules, need_server, start_transport

need_modules("azure.eventhub", extra="eventhubs")

from azure.eventhub import EventData  # noqa: E402
from azure.eventhub.aio import EventHubProducerClient  # noqa: E402

from iotbench.model.spec import parse_spec  # noqa: E402
from iotbench.pipeline.runner import run_cell  # noqa: E402
from iotbench.transports.base import TransportError  # noqa: E402
from iotbench.transports.eventhubs.transport import EventHubsTransport  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

CALL_S = 15.0


async def _started(tmp_path):
    """The deployment (``.transport``, ``.stop()``): the local endpoint, Azurite and the transport."""
    return await start_transport(EventHubsTransport(checkpoint="blob"), tmp_path / "server")


async def _send(transport: EventHubsTransport, bodies: list[bytes]) -> None:
    producer = EventHubProducerClient.from_connection_string(
        transport.connection.render(), retry_total=0, **transport.sdk_kwargs()
    )
    async with asyncio.timeout(CALL_S):
        for body in bodies:
            await producer.send_event(EventData(body), partition_key=body.decode().split(":")[0])
        await producer.close()


async def _until(received: list, count: int) -> None:
    async with asyncio.timeout(CALL_S):
        while len(received) < count:
            await asyncio.sleep(0.02)


async def _checkpoints(transport: EventHubsTransport, receiver) -> dict[str, int]:
    client = receiver._client
    async with asyncio.timeout(CALL_S):
        found = await transport._checkpoint_store.list_checkpoints(
            client._address.hostname, transport.hub, transport.consumer_group
        )
    return {c["partition_id"]: c["sequence_number"] for c in found}


def test_checkpoints_move_only_when_the_cold_store_is_durable_and_a_restart_resumes_there(tmp_path):
    async def scenario():
        deployment = await _started(tmp_path)
        transport = deployment.transport
        try:
            received: list[bytes] = []
            receiver = await transport.open_receiver(received.append)
            first = [f"dev-{d}:{i}".encode() for d in range(4) for i in range(3)]
            await _send(transport, first)
            await _until(received, len(first))
            await asyncio.sleep(0.3)
            assert await _checkpoints(transport, receiver) == {}, "checkpointed before the cold store had the events"

            mark = receiver.mark()
            receiver.durable(mark)
            await asyncio.wait(set(receiver._checkpointing) or {asyncio.ensure_future(asyncio.sleep(0))})
            stored = await _checkpoints(transport, receiver)
            assert stored == {pid: event.sequence_number for pid, (_, event) in mark.items()}
            assert transport.counters()["checkpoints"] == len(mark)
            await receiver.close()

            later = [f"dev-{d}:{i}".encode() for d in range(4) for i in range(3, 5)]
            await _send(transport, later)
            again: list[bytes] = []
            second = await transport.open_receiver(again.append)  # same store: resumes after the checkpoints
            await _until(again, len(later))
            await asyncio.sleep(0.5)
            await second.close()
            assert sorted(again) == sorted(later)
        finally:
            await deployment.stop()

    asyncio.run(scenario())


def test_a_cell_with_the_blob_checkpoint_store_checkpoints_and_loses_nothing(tmp_path):
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["eventhubs"],
            "connections": [2],
            "devices": [200],
            "interval_s": [1.0],
            "duration_s": 3.0,
            "warmup_s": 0.5,
            "drain_timeout_s": 10.0,
            "cold_store": {"roll_s": 0.5},
            "transport_options": {"eventhubs": {"checkpoint": "blob"}},
        }
    )
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    if result.error and "not installed" in result.error:
        need_server(result.error)
    assert result.status == "ok", result.error
    assert result.events_lost == 0 and result.events_stored == result.events_sent > 0
    assert result.transport_counters.get("checkpoints", 0) > 0, result.transport_counters
    assert result.transport_counters.get("checkpoint_failures", 0) == 0
    assert (tmp_path / "cell" / "server" / "azurite" / "azurite.log").exists()


def test_a_storage_account_from_the_environment_is_used_and_its_key_is_written_nowhere(tmp_path, monkeypatch, capfd):
    import base64
    import secrets

    from iotbench.transports.eventhubs.checkpoints import STORAGE_ENV
    from iotbench.transports.servers.azurite import LocalAzurite

    key = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("AZURITE_ACCOUNTS", f"fabrikamchk:{key}")  # Azurite's custom accounts stand in for Azure
    try:
        storage = LocalAzurite(tmp_path / "account").start()
    except TransportError as exc:
        need_server(str(exc))
    try:
        monkeypatch.setenv(
            STORAGE_ENV,
            f"DefaultEndpointsProtocol=http;AccountName=fabrikamchk;AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{storage.port}/fabrikamchk;",
        )
        spec = parse_spec(
            {
                "codecs": ["json"],
                "transports": ["eventhubs"],
                "connections": [1],
                "devices": [50],
                "interval_s": [1.0],
                "duration_s": 2.0,
                "warmup_s": 0.5,
                "cold_store": {"roll_s": 0.5},
                "transport_options": {"eventhubs": {"checkpoint": "blob"}},
            }
        )
        result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    finally:
        storage.stop()
    assert result.status == "ok", result.error
    assert result.transport_counters.get("checkpoints", 0) > 0, result.transport_counters
    assert not (tmp_path / "cell" / "server" / "azurite").exists(), "started its own Azurite despite the variable"
    for path in (tmp_path / "cell").rglob("*"):
        if path.is_file() and path.suffix != ".gz":
            assert key.encode() not in path.read_bytes(), f"the storage key leaked into {path.name}"
    captured = capfd.readouterr()
    assert key not in captured.out + captured.err

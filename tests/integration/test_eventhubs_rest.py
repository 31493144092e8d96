"""The local endpoint's REST send API: SAS checked, both protocols into one hub, base64 batches.

Requests are made with aiohttp the way the service documents them (FACTS.md); what
they published is read back with the unchanged SDK consumer over AMQP.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from support import need_modules, need_server

need_modules("azure.eventhub", "aiohttp", extra="eventhubs,http")

import aiohttp  # noqa: E402
from azure.eventhub import EventData  # noqa: E402
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient  # noqa: E402

from iotbench.transports.sas import ConnectionString, sign  # noqa: E402
from iotbench.transports.servers.eventhubs import EndpointSettings, LocalEventHubs  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

CALL_S = 15.0
BATCH = "application/vnd.microsoft.servicebus.json"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    try:
        endpoint = LocalEventHubs(tmp_path_factory.mktemp("eventhubs-rest"), EndpointSettings(rest=True)).start()
    except Exception as exc:  # noqa: BLE001
        need_server(f"local Event Hubs endpoint did not start: {exc}")
    yield endpoint
    endpoint.stop()


async def _post(
    hub,
    path: str,
    body: bytes,
    content_type: str = "application/atom+xml;type=entry;charset=utf-8",
    token: str | None = "sign",
) -> tuple[int, str]:
    conn = ConnectionString.parse(hub.connection_string)
    headers = {"Content-Type": content_type}
    if token == "sign":
        headers["Authorization"] = sign(f"{hub.rest_endpoint}/telemetry", conn.key_name, conn.key)
    elif token:
        headers["Authorization"] = token
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_S)) as session:
        async with session.post(hub.rest_endpoint + path, data=body, headers=headers) as response:
            return response.status, await response.text()


async def _read_all(hub, expected: int) -> list:
    got: list = []

    async def on_event(context, event) -> None:
        got.append((context.partition_id, event))

    client = EventHubConsumerClient.from_connection_string(
        hub.connection_string, consumer_group="$default", retry_total=0
    )
    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    try:
        async with asyncio.timeout(CALL_S):
            while len(got) < expected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        async with asyncio.timeout(CALL_S):
            await client.close()
        task.cancel()
    return got


def test_rest_and_amqp_publish_into_one_hub_with_sas_checked_and_base64_batches(hub):
    binary = bytes(range(256))

    async def scenario():
        assert (await _post(hub, "/telemetry/messages", b"x", token=None))[0] == 401
        status, text = await _post(
            hub,
            "/telemetry/messages",
            b"x",
            token="SharedAccessSignature sr=a&sig=b&se=9999999999&skn=RootManageSharedAccessKey",
        )
        assert status == 401 and "signature" in text and "sig=b" not in text
        assert (await _post(hub, "/elsewhere/messages", b"x"))[0] == 404

        assert (await _post(hub, "/telemetry/messages", b"rest-single"))[0] == 201
        for i in range(3):
            assert (await _post(hub, "/telemetry/publishers/device-7/messages", f"rest-dev7-{i}".encode()))[0] == 201
        batch = json.dumps(
            [
                {"Body": "rest-batch-text"},
                {"Body": base64.b64encode(binary).decode(), "UserProperties": {"iotbench-body": "base64"}},
            ]
        )
        assert (await _post(hub, "/telemetry/messages", batch.encode(), BATCH))[0] == 201
        assert (await _post(hub, "/telemetry/messages", b'[{"Body": 3}]', BATCH))[0] == 400

        producer = EventHubProducerClient.from_connection_string(hub.connection_string, retry_total=0)
        async with asyncio.timeout(CALL_S):
            await producer.send_event(EventData(b"amqp-single"))
            await producer.close()

        got = await _read_all(hub, 7)
        bodies = {b"".join(e.body) for _, e in got}
        assert bodies >= {
            b"rest-single",
            b"rest-batch-text",
            b"amqp-single",
            *(f"rest-dev7-{i}".encode() for i in range(3)),
        }
        dev7 = [(p, b"".join(e.body)) for p, e in got if b"".join(e.body).startswith(b"rest-dev7")]
        assert len({p for p, _ in dev7}) == 1 and [b for _, b in dev7] == [f"rest-dev7-{i}".encode() for i in range(3)]
        [encoded] = [e for _, e in got if e.properties.get(b"iotbench-body") == b"base64"]
        assert base64.b64decode(b"".join(encoded.body)) == binary  # the 33 % growth travels to the consumer

    asyncio.run(scenario())


def test_rest_publication_over_the_limit_is_413_and_over_the_throughput_unit_is_503(tmp_path):
    async def scenario(endpoint):
        assert (await _post(endpoint, "/telemetry/messages", b"x" * 5000))[0] == 413
        statuses = [(await _post(endpoint, "/telemetry/messages", b"x" * 10))[0] for _ in range(25)]
        assert set(statuses) == {201, 503} and statuses[:5] == [201] * 5  # 0.005 TU: 5 events/s, 5 at once
        return statuses

    settings = EndpointSettings(rest=True, throughput_units=0.005, max_message_bytes=4096)
    with LocalEventHubs(tmp_path, settings) as endpoint:
        statuses = asyncio.run(scenario(endpoint))
    stats = endpoint.stats()
    assert stats["throttled"] == statuses.count(503) and stats["events"] == statuses.count(201)

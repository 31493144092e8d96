"""The ingest gateway (Event Hubs REST send shape) and the HTTP transport, against a real server.

The contract test covers delivery and order for every client mode; these check what
it does not: the batch form with binary payloads (base64 on the wire, exact bytes
delivered), the gateway's answers to bad requests, its bounded sink, and using an
external endpoint instead of starting one.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from support import need_modules, send_through

need_modules("aiohttp", "uvicorn", extra="http")

import aiohttp  # noqa: E402

from iotbench.transports.emulators.ingest_gateway import SinkFull, StreamSink  # noqa: E402
from iotbench.transports.event_stream import BATCH_CONTENT_TYPE, Event, decode_frames, encode_frame  # noqa: E402
from iotbench.transports.http.transport import BODY_ENCODING, HttpTransport  # noqa: E402
from iotbench.transports.servers.ingest import start_gateway  # noqa: E402

BINARY = bytes(range(256)) * 4  # not UTF-8: must travel base64-encoded in the batch form


async def _send_and_receive(transport: HttpTransport, workdir, payloads: list[bytes]) -> tuple[list[bytes], int]:
    received, sender = await send_through(transport, workdir, [(f"dev-{i}", p) for i, p in enumerate(payloads)])
    return received, sender.wire_body_bytes


@pytest.mark.server
def test_batch_form_carries_binary_payloads_base64_and_delivers_exact_bytes(tmp_path):
    payloads = [BINARY, b'{"device_id": "b0000-a001-s1"}', "température".encode()]
    received, wire = asyncio.run(_send_and_receive(HttpTransport(form="batch"), tmp_path, payloads))
    assert received == payloads
    entries = [
        {"Body": base64.b64encode(BINARY).decode(), "UserProperties": {BODY_ENCODING: "base64"}},
        *({"Body": p.decode()} for p in payloads[1:]),
    ]
    assert wire == sum(len(json.dumps([e], ensure_ascii=False, separators=(",", ":")).encode()) for e in entries)
    assert wire > len(BINARY) * 4 // 3  # what went on the wire is the base64 form, a third larger


@pytest.mark.server
def test_single_form_sends_the_raw_payload(tmp_path):
    received, wire = asyncio.run(_send_and_receive(HttpTransport(url="hub", auth="none"), tmp_path, [BINARY]))
    assert received == [BINARY] and wire == len(BINARY)


async def _answers(url: str) -> dict[str, tuple[int, str]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        out = {}
        for name, method, path, body, ctype in [
            ("single", "POST", "/hub/messages", b"x", "application/octet-stream"),
            ("publisher", "POST", "/hub/publishers/b0000-a001-s1/messages", b"x", "application/octet-stream"),
            ("batch", "POST", "/hub/messages", b'[{"Body":"a"},{"Body":"b"}]', BATCH_CONTENT_TYPE),
            ("malformed", "POST", "/hub/messages", b'[{"Bod":"a"}]', BATCH_CONTENT_TYPE),
            ("not json", "POST", "/hub/messages", b"[{", BATCH_CONTENT_TYPE),
            ("too large", "POST", "/hub/messages", b"x" * (1024 * 1024 + 1), "application/octet-stream"),
            ("unknown path", "POST", "/hub/other", b"x", "application/octet-stream"),
            ("wrong method", "GET", "/hub/messages", None, "application/octet-stream"),
        ]:
            async with s.request(method, url + path, data=body, headers={"Content-Type": ctype}) as r:
                out[name] = (r.status, await r.text())
        return out


@pytest.mark.server
def test_gateway_answers_like_event_hubs(tmp_path):
    gateway = start_gateway(tmp_path)
    try:
        answers = asyncio.run(_answers(gateway.url))
    finally:
        gateway.stop()
    assert answers["single"][0] == answers["publisher"][0] == answers["batch"][0] == 201
    assert answers["malformed"][0] == 400 and "Body" in answers["malformed"][1]
    assert answers["not json"][0] == 400
    assert answers["too large"][0] == 413 and "smaller batches" in answers["too large"][1]
    assert answers["unknown path"][0] == 404 and answers["wrong method"][0] == 405


def test_stream_sink_is_bounded_and_says_server_busy_when_nobody_reads():
    async def fill() -> tuple[int, str]:
        sink = StreamSink(max_bytes=1000, put_timeout_s=0.1)
        accepted = 0
        try:
            for _ in range(100):
                await sink.put([Event("hub", b"x" * 100)])
                accepted += 1
        except SinkFull as exc:
            return accepted, str(exc)
        return accepted, ""

    accepted, reason = asyncio.run(fill())
    assert 5 <= accepted < 10  # ~1000 bytes of frames, then the sink refuses
    assert "none taken" in reason


def test_frames_split_anywhere_decode_to_the_same_events():
    events = [Event("hub", BINARY), Event("hub", b"", {BODY_ENCODING: "base64"}), Event("hub", b"abc", {"k": [1]})]
    stream = b"".join(map(encode_frame, events))
    for cut in (1, 5, 7, len(stream) - 1):
        buffer, out = bytearray(), []
        for piece in (stream[:cut], stream[cut:]):
            buffer += piece
            out += decode_frames(buffer)
        assert out == [(e.body, dict(e.properties)) for e in events] and not buffer


@pytest.mark.server
def test_an_external_endpoint_is_used_instead_of_starting_a_gateway(tmp_path):
    gateway = start_gateway(tmp_path / "external")
    try:
        transport = HttpTransport(endpoint=gateway.url)
        received, _ = asyncio.run(_send_and_receive(transport, tmp_path / "cell", [b"one", b"two"]))
        assert received == [b"one", b"two"]
        assert not (tmp_path / "cell").exists()  # nothing was started for the cell
    finally:
        gateway.stop()

"""HTTP/1.1 keep-alive to uvicorn: aiohttp sending the http transport's request (path, query, headers),
each connection a request at a time; the gateway's ``/$stream`` reader counts.

``http-one`` is one connection, the harness cell's own shape and so its yardstick; ``http-pool`` is
``POOL`` connections, the protocol's best library loop (FACTS.md), shown beside it. The http transport
writes its own client on httptools: aiohttp is the best library loop here (FACTS.md).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from functools import partial
from urllib.parse import quote

import aiohttp

from iotbench.studies.direct_loops.base import (
    ACK_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    POLL_S,
    DirectLoop,
    DirectLoopError,
    Ready,
    Stop,
    Timeline,
    run_async,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.event_stream import STREAM_PATH, decode_frames
from iotbench.transports.http.rest_client import QUERY, SINGLE_CONTENT_TYPE, RestEndpoint
from iotbench.transports.servers.ingest import IngestGateway

__all__ = ["ONE", "POOL", "POOL_SIZE"]

POOL_SIZE = 64  # FACTS.md: aiohttp's best keep-alive figure was at 64 concurrent requests
HUB = "telemetry"


async def send(
    connections: int, endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    base = f"http://{endpoint.host}:{endpoint.port}"
    # the http transport's request: its path, query, Content-Type and SAS Authorization header
    headers = RestEndpoint(base, None, HUB, "send", secrets.token_urlsafe(32)).headers(SINGLE_CONTENT_TYPE)
    paths = [f"/{HUB}/publishers/{quote(k, safe='')}/messages{QUERY}" for k in keys]
    counts = [0, 0]  # sent, acknowledged (201)
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def requests(first: int) -> None:
            i, post = first, session.post
            while time.monotonic() < until:
                counts[0] += 1
                async with post(paths[i % len(paths)], data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 201:
                        raise DirectLoopError(f"the gateway answered {response.status}")
                counts[1] += 1
                timeline.sample(counts[1])
                i += connections

        async with asyncio.timeout(max(0.0, until - time.monotonic()) + ACK_TIMEOUT_S):
            await asyncio.gather(*(requests(i) for i in range(connections)))
    timeline.close(counts[1])
    return counts[0], counts[1]


async def receive(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            response = await session.get(f"http://{endpoint.host}:{endpoint.port}{STREAM_PATH}")
        ready()
        buffer, count = bytearray(), 0
        while not stop(count):
            try:
                async with asyncio.timeout(POLL_S):
                    chunk = await response.content.readany()
            except TimeoutError:
                continue
            if not chunk:
                raise DirectLoopError("the gateway ended the event stream")
            buffer += chunk
            count += len(decode_frames(buffer))
            timeline.sample(count)
        timeline.close(count)
        response.release()
        return count


def _loop(connections: int, shape: str) -> DirectLoop:
    return DirectLoop(
        f"HTTP/1.1 keep-alive -> uvicorn: aiohttp, {shape}",
        partial(IngestGateway, "uvicorn"),
        partial(run_async, send, connections),
        partial(run_async, receive),
    )


ONE = _loop(1, "one connection")
POOL = _loop(POOL_SIZE, f"{POOL_SIZE} connections")

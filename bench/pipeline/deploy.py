"""A transport with the servers it needs: start them, hand it their endpoints, stop it all.

The harness, not the transport, deploys: ``transport.servers()`` names what a cell needs on
this machine (nothing when the spec or the environment names an outside endpoint, Azure
included), each is started in its own folder under ``workdir`` (``workdir/<server.name>``),
and the transport connects to the endpoints they return.

>>> async with Deployment(MqttTransport(qos=1), folder / "server") as transport:  # doctest: +SKIP
...     receiver = await transport.open_receiver(deliver)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iotbench.transports.base import Transport
from iotbench.transports.endpoints import Endpoint

__all__ = ["Deployment"]


class Deployment:
    """``await Deployment(transport, workdir).start()``; ``stop()`` closes the transport, then its servers."""

    def __init__(self, transport: Transport, workdir: Path) -> None:
        self.transport = transport
        self.workdir = Path(workdir).resolve()
        self.started: list[Any] = []  # the servers running, in start order
        self._stopped: list[Any] = []  # their counters are read after they stop
        self.endpoints: dict[str, Endpoint] = {}

    async def start(self) -> Transport:
        """Start every server the transport names, then the transport; a failure stops what started."""
        try:
            self.endpoints = await self.start_servers()
            await self.transport.start(self.endpoints)
        except BaseException:
            await self.stop()
            raise
        return self.transport

    async def start_servers(self) -> dict[str, Endpoint]:
        """Only the servers (the sides of a cell connect from their own processes): role -> endpoint."""
        endpoints = {}
        for role, server in self.transport.servers().items():
            self.started.append(server)
            endpoints[role] = await asyncio.to_thread(server.start, self.workdir / server.name)
        return endpoints

    async def stop(self) -> None:
        """Close the transport's connections, then stop the servers (each by pid, bounded by its launcher)."""
        try:
            await self.transport.stop()
        finally:
            await self.stop_servers()

    async def stop_servers(self) -> None:
        servers, self.started = self.started, []
        for server in reversed(servers):
            await asyncio.to_thread(server.stop)
            self._stopped.append(server)

    def server_pids(self) -> dict[str, list[int]]:
        """Each running server's processes (their children count too): the runner reads their CPU and memory."""
        from iotbench.transports.servers.process import pids_under  # a server's module loads only with a cell

        return {server.name: pids_under(self.workdir / server.name) for server in self.started}

    def counters(self) -> dict[str, int]:
        """The transport's counters and every stopped server's, the latter as ``server_<name>``."""
        return {**self.transport.counters(), **self.server_counters()}

    def server_counters(self) -> dict[str, int]:
        out = {}
        for server in self._stopped:
            out.update({f"server_{name}": value for name, value in server.counters().items()})
        return out

    async def __aenter__(self) -> Transport:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

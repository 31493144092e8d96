"""The server contract: what the harness starts for a cell, and what a transport is handed.

A transport never starts a server (OpenMessaging Benchmark's drivers never deploy brokers):
it names the servers a cell needs on this machine (``Transport.servers()``), the harness
starts them (``iotbench.pipeline.deploy``) and hands the transport their ``Endpoint``s --
the same way an outside broker or Azure is handed to it from the options or the
environment.

>>> server = Mosquitto(tls=True)                 # doctest: +SKIP
>>> endpoint = server.start(workdir)             # a free loopback port, files under workdir
>>> endpoint.scheme, endpoint.ca_file            # ('mqtts', '.../tls/ca.pem')
>>> server.stop()                                # by pid; nothing left behind
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from iotbench.transports.endpoints import Endpoint

__all__ = ["Server", "ServerDefaults"]


@runtime_checkable
class Server(Protocol):
    """One server process started for a cell."""

    name: str  # its folder under the cell's server/ folder, and its log's name

    def start(self, workdir: Path) -> Endpoint:
        """Start it on a free loopback port, its files under ``workdir``; return where to connect."""

    def stop(self) -> None:
        """Stop it (and every process it started); safe to call twice."""

    def counters(self) -> dict[str, int]:
        """What only the server saw (publications, throttled requests); read after ``stop``."""


class ServerDefaults:
    def counters(self) -> dict[str, int]:
        return {}

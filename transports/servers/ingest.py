"""Start the ingest gateway in its own server process: uvicorn, granian or hypercorn.

uvicorn with uvloop and httptools is the fastest Python HTTP/1.1 server here
(FACTS.md: 43k requests/s against wrk). granian (Rust) and hypercorn speak HTTP/2, in
clear text (prior knowledge) and over TLS (ALPN); granian spent ~100 us of CPU per
HTTP/2 request here, hypercorn ~250 us. hypercorn's default ``keep_alive_max_requests``
(1,000) would close an HTTP/2 connection mid-run, so it is raised. All get a short
graceful-shutdown time: the consumer's ``/$stream`` response never ends by itself.

    >>> gateway = start_gateway(workdir, server="uvicorn", tls=False)   # doctest: +SKIP
    >>> gateway.url                                                      # 'http://127.0.0.1:40123'
    >>> gateway.stop()
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port
from iotbench.transports.servers.tls import LocalCA, local_ca

__all__ = ["Gateway", "SERVERS", "default_server", "start_gateway", "IngestGateway"]

SERVERS = ("granian", "hypercorn", "uvicorn")
APP_FACTORY = "iotbench.transports.emulators.ingest_gateway:app_from_env"
INSTALL_HINT = "pip install 'iotbench[http]'"


@dataclass
class Gateway:
    """A running gateway: where it listens, the CA its clients trust (TLS), its process."""

    url: str
    process: ServerProcess
    tls: LocalCA | None

    def stop(self) -> None:
        self.process.stop()


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def default_server(mode: str) -> str:
    """uvicorn for HTTP/1.1; for HTTP/2 granian when installed (~100 us of server CPU per
    request here against hypercorn's ~250 us), else hypercorn."""
    if mode != "http2":
        return "uvicorn"
    return "granian" if _have("granian") else "hypercorn"


def _uvicorn_argv(port: int, tls: LocalCA | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        APP_FACTORY,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--loop",
        "uvloop" if _have("uvloop") else "asyncio",
        "--http",
        "httptools" if _have("httptools") else "h11",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        "--timeout-keep-alive",
        "60",
        "--timeout-graceful-shutdown",
        "1",
        "--backlog",
        "4096",
    ]
    if tls:
        argv += ["--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
    return argv


def _hypercorn_argv(port: int, tls: LocalCA | None, workdir: Path) -> list[str]:
    config = workdir / "hypercorn.toml"
    lines = [
        f'bind = ["{LOOPBACK}:{port}"]',
        "keep_alive_max_requests = 1000000000",  # the default 1,000 ends an HTTP/2 connection mid-run
        "keep_alive_timeout = 60",
        "graceful_timeout = 1",
        "h2_max_concurrent_streams = 100",
        "backlog = 4096",
        'loglevel = "WARNING"',
    ]
    if _have("uvloop"):
        lines.append('worker_class = "uvloop"')
    if tls:
        lines += [f'certfile = "{tls.cert}"', f'keyfile = "{tls.key}"']
    config.write_text("\n".join(lines) + "\n")
    return [sys.executable, "-m", "hypercorn", "--config", str(config), f"{APP_FACTORY}()"]


def _granian_argv(port: int, tls: LocalCA | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--http",
        "auto",
        "--workers",
        "1",
        "--runtime-threads",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
        "--http2-max-concurrent-streams",
        "100",
        "--workers-kill-timeout",
        "1",
    ]
    if tls:
        argv += ["--ssl-certificate", str(tls.cert), "--ssl-keyfile", str(tls.key)]
    return argv + [APP_FACTORY]


def start_gateway(
    workdir: Path,
    *,
    server: str = "uvicorn",
    tls: bool = False,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> Gateway:
    """Start the gateway on a free loopback port under ``workdir``; ready when the port accepts."""
    if server not in SERVERS:
        raise TransportError(f"unknown gateway server {server!r}; use one of {', '.join(SERVERS)}")
    if not _have(server):
        raise TransportError(f"{server} is not installed: {INSTALL_HINT}")
    workdir = Path(workdir).resolve()  # the server runs in its own folder: relative paths would break
    workdir.mkdir(parents=True, exist_ok=True)
    files = local_ca(workdir / "tls") if tls else None
    port = free_port()
    if server == "uvicorn":
        argv = _uvicorn_argv(port, files)
    elif server == "hypercorn":
        argv = _hypercorn_argv(port, files, workdir)
    else:
        argv = _granian_argv(port, files)
    process = ServerProcess(f"gateway-{server}", argv, workdir=workdir, port=port, env=env, ready_timeout=ready_timeout)
    process.start()
    return Gateway(url=f"{'https' if tls else 'http'}://{LOOPBACK}:{port}", process=process, tls=files)


class IngestGateway(ServerDefaults):
    """``IngestGateway("granian", tls=True).start(workdir)`` -> its Endpoint (``https`` with a local CA)."""

    name = "gateway"

    def __init__(self, server: str = "uvicorn", *, tls: bool = False) -> None:
        self.server, self.tls = server, tls
        self._gateway: Gateway | None = None

    def start(self, workdir: Path) -> Endpoint:
        self._gateway = start_gateway(workdir, server=self.server, tls=self.tls)
        ca = str(self._gateway.tls.ca) if self._gateway.tls else None
        return Endpoint("https" if self.tls else "http", LOOPBACK, self._gateway.process.port, ca_file=ca)

    @property
    def process(self) -> ServerProcess | None:
        return self._gateway.process if self._gateway else None

    def stop(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()

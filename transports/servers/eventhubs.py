"""The local Event Hubs endpoint as a server process, and its starter.

``python -m iotbench.transports.servers.eventhubs --port P --hub telemetry`` serves one
hub (4 partitions by default) over AMQP 1.0 for the unchanged ``azure-eventhub`` SDK
(``eventhubs_endpoint``), with the service's limits when asked (throughput units,
maximum publication size, maximum connections). The access key comes from the
environment (``IOTBENCH_EVENTHUBS_KEY``), never from the command line, where ``ps``
and logs would show it.

``LocalEventHubs`` starts it through ``ServerProcess`` (free loopback port, log in the
work dir, stopped by pid) and hands out the connection string the SDK takes.

With ``tls`` (``--certfile``/``--keyfile``, a local CA's: ``servers.tls``) both sides speak
what the service does -- AMQPS (TLS first, then the SASL and AMQP headers, as on port 5671)
and HTTPS -- and the connection string loses ``UseDevelopmentEmulator=true`` (which turns
the SDK's TLS off): the SDK reaches the port through ``custom_endpoint_address`` and trusts
the CA through ``connection_verify`` (``EventHubsTransport.sdk_kwargs``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.endpoints import Endpoint
from iotbench.transports.sas import ConnectionString
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port
from iotbench.transports.servers.tls import LocalCA, local_ca

__all__ = ["EndpointSettings", "EventHubsServer", "LocalEventHubs", "main"]

KEY_ENV = "IOTBENCH_EVENTHUBS_KEY"
KEY_NAME = "RootManageSharedAccessKey"
STATS_FILE = "eventhubs-stats.json"


@dataclass(frozen=True)
class EndpointSettings:
    """What a local endpoint is started with; 0 means unlimited."""

    hub: str = "telemetry"
    partitions: int = 4
    throughput_units: float = 0
    max_message_bytes: int = 1024 * 1024
    max_connections: int = 0
    rest: bool = False  # also serve the REST send API over HTTP
    tls: bool = False  # AMQPS and HTTPS, with a local CA's certificate

    def argv(self) -> list[str]:
        out = [
            "--hub",
            self.hub,
            "--partitions",
            str(self.partitions),
            "--throughput-units",
            f"{self.throughput_units:g}",
            "--max-message-bytes",
            str(self.max_message_bytes),
            "--max-connections",
            str(self.max_connections),
        ]
        return out


class LocalEventHubs:
    """``with LocalEventHubs(workdir, EndpointSettings()) as hubs: hubs.connection_string``."""

    def __init__(self, workdir: Path, settings: EndpointSettings = EndpointSettings()) -> None:
        self.workdir = Path(workdir).resolve()  # servers run in their own folder: never relative
        self.settings = settings
        self.port = free_port()
        self.http_port = free_port() if settings.rest else None
        self._key = secrets.token_urlsafe(32)  # a fresh key per endpoint: nothing to leak beyond the run
        self.tls: LocalCA | None = local_ca(self.workdir / "tls") if settings.tls else None
        argv = [
            sys.executable,
            "-m",
            "iotbench.transports.servers.eventhubs",
            "--port",
            str(self.port),
            *settings.argv(),
        ]
        if self.http_port:
            argv += ["--http-port", str(self.http_port)]
        if self.tls:
            argv += ["--certfile", str(self.tls.cert), "--keyfile", str(self.tls.key)]
        self.process = ServerProcess(
            "eventhubs", argv, workdir=self.workdir, port=self.port, env={KEY_ENV: self._key}, ready_timeout=30.0
        )

    @property
    def connection(self) -> ConnectionString:
        emulator = self.tls is None  # UseDevelopmentEmulator=true: plain TCP, no TLS
        return ConnectionString(f"sb://{LOOPBACK}:{self.port}/", KEY_NAME, self._key, self.settings.hub, emulator)

    @property
    def connection_string(self) -> str:
        """What the SDK takes (plain TCP with ``UseDevelopmentEmulator=true``, else TLS); it holds the key."""
        return self.connection.render()

    @property
    def rest_endpoint(self) -> str | None:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.http_port}" if self.http_port else None

    def start(self) -> LocalEventHubs:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def stats(self) -> dict[str, int]:
        """What the endpoint counted (publications, throttled, refused connections); after ``stop``."""
        try:
            return {k: int(v) for k, v in json.loads((self.workdir / STATS_FILE).read_text()).items()}
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> LocalEventHubs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EventHubsServer(ServerDefaults):
    """``EventHubsServer(settings).start(workdir)`` -> the local endpoint's Endpoint: AMQP (``amqps``
    with the local CA's ``ca_file`` when ``settings.tls``) on ``port``; ``extras``:
    ``connection_string`` (the SDK's, holding the key) and ``rest`` (the REST send API's base URL,
    when ``settings.rest``)."""

    name = "eventhubs"
    COUNTED = ("publications", "events", "throttled", "refused_connections", "oversize")

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.local: LocalEventHubs | None = None

    def start(self, workdir: Path) -> Endpoint:
        self.local = LocalEventHubs(workdir, self.settings).start()
        tls = self.local.tls
        return Endpoint(
            "amqps" if tls else "amqp",
            LOOPBACK,
            self.local.port,
            KEY_NAME,
            self.local.connection.key,
            ca_file=str(tls.ca) if tls else None,
            extras={"connection_string": self.local.connection_string, "rest": self.local.rest_endpoint or ""},
        )

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()

    def counters(self) -> dict[str, int]:
        stats = self.local.stats() if self.local is not None else {}
        return {name: value for name, value in stats.items() if name in self.COUNTED}


# ---- the server process -------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="eventhubs_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http-port", type=int, default=0, help="also serve the REST send API here")
    parser.add_argument("--hub", default="telemetry")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--key-name", default=KEY_NAME)
    parser.add_argument("--throughput-units", type=float, default=0, help="0: unlimited")
    parser.add_argument("--max-message-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--max-connections", type=int, default=0, help="0: unlimited")
    parser.add_argument("--certfile", default="", help="TLS on both ports: the server's certificate chain (PEM)")
    parser.add_argument("--keyfile", default="", help="... and its private key (PEM)")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, key: str) -> None:
    from iotbench.transports.emulators.eventhubs.endpoint import AmqpEndpoint
    from iotbench.transports.emulators.eventhubs.hub import Hub, HubLimits

    hub = Hub(args.hub, args.partitions, HubLimits(args.throughput_units, args.max_message_bytes, args.max_connections))
    endpoint = AmqpEndpoint(hub, args.key_name, key)
    tls = (args.certfile, args.keyfile) if args.certfile else None
    closers: list[Callable[[], object]] = []
    if args.http_port:  # first: the AMQP port opening is what tells the starter that all is ready
        from iotbench.transports.emulators.eventhubs.rest import serve_rest

        closers.append(await serve_rest(hub, args.key_name, key, args.host, args.http_port, tls=tls))
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    server = await asyncio.start_server(endpoint.serve, args.host, args.port, limit=2**22, ssl=context)
    closers.append(server.close)
    logging.info(
        "serving hub %s (%d partitions) on %s://%s:%d%s; limits: %s",
        hub.name,
        len(hub.partitions),
        "amqps" if tls else "amqp",
        args.host,
        args.port,
        f" and {'https' if tls else 'http'}://{args.host}:{args.http_port}" if args.http_port else "",
        hub.limits,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.info("stopping; totals: %s", hub.stats)
    Path(STATS_FILE).write_text(json.dumps(hub.stats))  # the cwd is the work dir: the starter reads it back
    for close in closers:
        result = close()
        if asyncio.iscoroutine(result):
            await result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    for noisy in ("azure", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = _parse(argv)
    key = os.environ.get(KEY_ENV)
    if not key:
        print(f"eventhubs_server: set {KEY_ENV} to the shared access key clients sign with", file=sys.stderr)
        return 2
    asyncio.run(_serve(args, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())

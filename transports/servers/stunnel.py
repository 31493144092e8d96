"""A TLS terminator (Debian's stunnel4) in front of a server that speaks no TLS itself.

Tansu 0.6 has no working TLS listener (its ``--cert`` and ``--key`` exclude each other), so a
Kafka-over-TLS cell puts stunnel -- OpenSSL in C, one thread per connection -- between the
clients and the broker: TLS ends on ``accept``, plain TCP goes on to ``connect`` on loopback.
The clients measure the real handshake and record layer; the terminator's CPU is the
server's (it runs in the server's folder). ``TCP_NODELAY`` on both sides: without it the
hop would add Nagle delays a TLS listener inside the broker would not.

    >>> tls = local_ca(workdir / "tls")                                    # doctest: +SKIP
    >>> proxy = start_stunnel(workdir, accept=9093, connect=9092, tls=tls)
    >>> proxy.stop()
"""

from __future__ import annotations

from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, require_binary
from iotbench.transports.servers.tls import LocalCA

__all__ = ["start_stunnel"]

INSTALL_HINT = "apt-get install stunnel4 (scripts/setup does)"


def _config(accept: int, connect: int, tls: LocalCA) -> str:
    return "\n".join(
        [
            "foreground = yes",  # logs to stderr: the server's log file
            "pid =",  # no pid file: it is stopped by pid
            "syslog = no",
            "debug = notice",  # one line per connection and its byte counts
            "[tls]",
            f"accept = {LOOPBACK}:{accept}",
            f"connect = {LOOPBACK}:{connect}",
            f"cert = {tls.cert}",
            f"key = {tls.key}",
            "socket = l:TCP_NODELAY=1",
            "socket = r:TCP_NODELAY=1",
            "",
        ]
    )


def start_stunnel(
    workdir: Path, *, accept: int, connect: int, tls: LocalCA, ready_timeout: float = 15.0
) -> ServerProcess:
    """stunnel taking TLS on ``accept`` and passing the plain stream to ``connect`` (both on loopback)."""
    try:
        binary = require_binary("stunnel4", INSTALL_HINT)  # Debian's name
    except TransportError:
        binary = require_binary("stunnel", INSTALL_HINT)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "stunnel.conf"
    conf.write_text(_config(accept, connect, tls))
    return ServerProcess(
        "stunnel", [binary, str(conf)], workdir=workdir, port=accept, ready_timeout=ready_timeout
    ).start()

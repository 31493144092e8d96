"""Start the CoAP gateway (``coap_gateway``) in its own process on a free loopback port.

It listens for CoAP on UDP and serves the consumer's event stream on TCP, both on the
same port number; it is ready when the TCP side accepts (``ServerProcess``'s check).

    >>> gateway = start_coap_gateway(workdir)      # doctest: +SKIP
    >>> gateway.port
    >>> gateway.stop()
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import ServerDefaults
from iotbench.transports.servers.process import LOOPBACK, ServerProcess, free_port

COUNTS_FILE = "datagrams.json"  # what the gateway writes in its folder (emulators.coap_gateway.COUNTS_FILE)

__all__ = ["start_coap_gateway", "CoapGateway"]


def start_coap_gateway(workdir: Path, *, ready_timeout: float = 30.0) -> ServerProcess:
    if importlib.util.find_spec("aiocoap") is None:
        raise TransportError("aiocoap is not installed: pip install 'iotbench[coap]'")
    port = free_port()
    process = ServerProcess(
        "coap-gateway",
        [sys.executable, "-m", "iotbench.transports.emulators.coap_gateway", str(port)],
        workdir=Path(workdir).resolve(),
        port=port,
        ready_timeout=ready_timeout,
    )
    return process.start()


class CoapGateway(ServerDefaults):
    """``CoapGateway().start(workdir)`` -> its Endpoint (CoAP on UDP, the event stream on TCP, one port)."""

    name = "coap-gateway"

    def __init__(self) -> None:
        self._process: ServerProcess | None = None

    def start(self, workdir: Path) -> Endpoint:
        self._process = start_coap_gateway(workdir)
        return Endpoint("coap", LOOPBACK, self._process.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def counters(self) -> dict[str, int]:
        """The datagrams each way and their bytes, as the gateway counted them (UDP has no kernel
        counters per socket): ``udp_datagrams_up``, ``udp_bytes_up``, ``udp_datagrams_down``, ``udp_bytes_down``."""
        if self._process is None:
            return {}
        try:
            return {k: int(v) for k, v in json.loads((self._process.workdir / COUNTS_FILE).read_text()).items()}
        except (OSError, ValueError):
            return {}

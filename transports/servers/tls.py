"""TLS through a local certificate authority, for servers started on loopback.

Every TLS cell needs a server certificate its clients trust, without touching the
system's trust store and without a real CA. ``local_ca(folder)`` makes one with
trustme -- a CA and a server certificate for 127.0.0.1 / localhost -- and writes
the PEM files a server's command line takes (``--certfile``/``--keyfile``, a
mosquitto ``certfile``/``keyfile``/``cafile``, stunnel's ``cert``/``key`` in front of Tansu).
Clients build their context from the CA file only, so a cell measures the real
handshake with a one-certificate chain (FACTS.md: 1.2-2.5 KB, ~1 ms CPU).

    >>> tls = local_ca(workdir / "tls")                          # doctest: +SKIP
    >>> ServerProcess(..., argv=[..., "--certfile", str(tls.cert), "--keyfile", str(tls.key)])
    >>> ctx = tls.client_context()                               # for aiohttp, httpx, paho, aiokafka
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iotbench.transports.base import TransportError
from iotbench.transports.tls import client_context

__all__ = ["LocalCA", "local_ca"]

INSTALL_HINT = "pip install trustme (or pip install 'iotbench[http]')"


@dataclass(frozen=True)
class LocalCA:
    """The PEM files of a local CA and of one server certificate it signed."""

    ca: Path  # the CA certificate: what clients trust
    cert: Path  # the server's certificate chain: the leaf (the root stays with the clients)
    key: Path  # the server's private key, PKCS#8, unencrypted (the server reads it unattended)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only and checks the host name."""
        return client_context(self.ca)

    def server_context(self) -> ssl.SSLContext:
        """A server context for an in-process server (the real servers read the files)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def local_ca(folder: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> LocalCA:
    """A fresh CA and a server certificate for ``hosts``, written to ``folder``."""
    try:
        import trustme
    except ImportError:
        raise TransportError(f"TLS cells need trustme, which is not installed: {INSTALL_HINT}") from None
    folder = Path(folder).resolve()  # servers read these from their own working folder
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="iotbench local CA")
    server = ca.issue_cert(*hosts)
    files = LocalCA(ca=folder / "ca.pem", cert=folder / "server-chain.pem", key=folder / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    files.key.write_bytes(_pkcs8(server.private_key_pem.bytes()))
    with open(files.cert, "wb") as fh:
        for blob in server.cert_chain_pems:  # leaf, then intermediates (none here)
            fh.write(blob.bytes())
    files.key.chmod(0o600)
    return files


def _pkcs8(key_pem: bytes) -> bytes:
    """The key as PKCS#8 PEM: what every server here reads (granian reads nothing else)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

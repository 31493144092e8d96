"""Client-side TLS: a context that trusts one CA file (a local CA's, or an outside server's).

Servers started here get their certificate from ``servers.tls.local_ca``; clients build
their context from the CA file only, so a cell measures the real handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from iotbench.transports.base import TransportError

__all__ = ["client_context"]


def client_context(ca_file: Path | str) -> ssl.SSLContext:
    """A client context trusting ``ca_file`` (e.g. from ``local_ca`` or an external server's CA)."""
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(
            f"cannot load the CA file {ca_file} ({exc}); give the PEM file of the server's CA"
        ) from None

"""External endpoints: a broker named by the spec or the environment instead of a started one.

Specs and results are saved with every run, so a password never comes from the
spec: a spec's ``url`` option names scheme, host, port and at most a user; the
password comes from ``IOTBENCH_<PROTOCOL>_PASSWORD``. Without a ``url`` option,
``IOTBENCH_<PROTOCOL>_URL`` (which may carry the password, it is never saved) names
the endpoint. Without either, the transport starts its own server. Error messages
name host and port only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from iotbench.transports.base import TransportError

__all__ = ["Endpoint", "external_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """Where to connect; ``str(endpoint)`` is ``host:port`` (safe to log).

    A started server (``transports.servers``) hands one to its transport; an outside one
    comes from the spec's options or the environment. ``ca_file`` is the CA a client must
    trust for TLS (a local CA's), ``extras`` what only one protocol needs (an Event Hubs
    connection string, a second port).
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def external_endpoint(url: str, protocol: str, schemes: dict[str, int]) -> Endpoint | None:
    """The endpoint named by the ``url`` option or ``IOTBENCH_<PROTOCOL>_URL``, else None.

    ``schemes`` maps each accepted URL scheme to its default port:
    ``external_endpoint("mqtt://broker:1883", "mqtt", {"mqtt": 1883})``.
    """
    prefix = f"IOTBENCH_{protocol.upper()}"
    from_spec = bool(url)
    url = url or os.environ.get(f"{prefix}_URL", "")
    if not url:
        return None
    where = f"the {protocol} 'url' option" if from_spec else f"{prefix}_URL"
    parts = urlsplit(url)
    if from_spec and parts.password:
        raise TransportError(
            f"{where} holds a password, and specs are saved with the results; "
            f"remove it and set {prefix}_PASSWORD, or give the whole url in {prefix}_URL "
            "(the environment is never saved)"
        )
    try:
        port = parts.port or schemes.get(parts.scheme, 0)
    except ValueError:
        port = 0
    if parts.scheme not in schemes or not parts.hostname or not port:
        shapes = " or ".join(f"{s}://[user@]host:port" for s in schemes)
        raise TransportError(f"{where} must look like {shapes} (got scheme {parts.scheme!r}, host {parts.hostname!r})")
    password = unquote(parts.password) if parts.password else os.environ.get(f"{prefix}_PASSWORD")
    return Endpoint(parts.scheme, parts.hostname, port, unquote(parts.username) if parts.username else None, password)

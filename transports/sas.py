"""Event Hubs shared access signatures and connection strings, as the service defines them.

One module for both ends: the transports sign tokens (the REST send API needs them in
an ``Authorization`` header; the SDK signs its own), and the local endpoint verifies
them the way Azure does -- ``sig = base64(HMAC-SHA256(key, quote_plus(sr) + "\\n" + se))``
-- so a wrong key fails locally exactly as it would in the cloud.

A connection string carries the key: ``redact`` is what any message that might show
one goes through, and ``ConnectionString.__repr__`` never prints it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote_plus, urlencode, urlparse

__all__ = ["ConnectionString", "SasError", "describe_failure", "grants", "redact", "sign", "verify"]

_PREFIX = "SharedAccessSignature "


class SasError(ValueError):
    """A token or connection string that cannot be used; the message never holds the key."""


@dataclass(frozen=True)
class ConnectionString:
    """``ConnectionString.parse("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=...")``."""

    endpoint: str  # sb://host[:port]/
    key_name: str
    key: str = field(repr=False)
    entity: str | None = None
    emulator: bool = False

    @classmethod
    def parse(cls, text: str) -> ConnectionString:
        parts: dict[str, str] = {}
        for item in text.strip().strip(";").split(";"):
            name, sep, value = item.partition("=")
            if not sep:
                raise SasError(
                    "connection string: a part has no '=': expected Endpoint=...;SharedAccessKeyName=...;"
                    "SharedAccessKey=...[;EntityPath=...]"
                )
            parts[name.strip().lower()] = value.strip()
        missing = [k for k in ("endpoint", "sharedaccesskeyname", "sharedaccesskey") if not parts.get(k)]
        if missing:
            raise SasError(
                f"connection string: missing {', '.join(missing)}; copy it from the namespace's "
                "'Shared access policies' page"
            )
        return cls(
            parts["endpoint"],
            parts["sharedaccesskeyname"],
            parts["sharedaccesskey"],
            parts.get("entitypath") or None,
            parts.get("usedevelopmentemulator", "").lower() == "true",
        )

    @property
    def host(self) -> str:
        """``ns.servicebus.windows.net`` (with ``:port`` for a local endpoint)."""
        return urlparse(self.endpoint).netloc

    def with_entity(self, entity: str) -> ConnectionString:
        return ConnectionString(self.endpoint, self.key_name, self.key, entity, self.emulator)

    def render(self) -> str:
        """The string form the SDK takes (it holds the key: never log it)."""
        out = f"Endpoint={self.endpoint};SharedAccessKeyName={self.key_name};SharedAccessKey={self.key}"
        if self.entity:
            out += f";EntityPath={self.entity}"
        if self.emulator:
            out += ";UseDevelopmentEmulator=true"
        return out


def sign(uri: str, key_name: str, key: str, ttl_s: float = 3600.0, now: float | None = None) -> str:
    """A token for resource ``uri``, valid ``ttl_s`` seconds: the ``Authorization`` header value."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    digest = hmac.new(key.encode(), f"{quote_plus(uri)}\n{expiry}".encode(), hashlib.sha256).digest()
    return _PREFIX + urlencode(
        {"sr": uri, "sig": base64.b64encode(digest).decode(), "se": str(expiry), "skn": key_name}
    )


def verify(token: str, key_name: str, key: str, now: float | None = None) -> str:
    """The resource URI ``token`` grants, or ``SasError`` saying why it is refused."""
    if not token.startswith(_PREFIX):
        raise SasError("not a SharedAccessSignature token")
    fields = {k: v[0] for k, v in parse_qs(token[len(_PREFIX) :], keep_blank_values=True).items()}
    for name in ("sr", "sig", "se", "skn"):
        if name not in fields:
            raise SasError(f"token has no '{name}' field")
    if fields["skn"] != key_name:
        raise SasError(f"unknown key name {fields['skn']!r}")
    try:
        expiry = int(fields["se"])
    except ValueError:
        raise SasError("token expiry 'se' is not a number") from None
    if expiry < (time.time() if now is None else now):
        raise SasError("token expired")
    expected = hmac.new(key.encode(), f"{quote_plus(fields['sr'])}\n{expiry}".encode(), hashlib.sha256).digest()
    try:
        given = base64.b64decode(fields["sig"], validate=True)
    except ValueError:
        raise SasError("token signature is not base64") from None
    if not hmac.compare_digest(expected, given):
        raise SasError("token signature does not match the key")
    return fields["sr"]


def grants(resource: str, entity_path: str) -> bool:
    """Whether a token for ``resource`` (``sb://host/hub``) covers ``entity_path`` (``hub/Partitions/0``).

    Like the service, a token for the namespace covers every entity; a token for a hub
    covers its partitions, publishers and consumer groups. The host is not compared: a
    local endpoint is reached under whatever loopback name the client used.
    """
    granted = urlparse(resource).path.strip("/").lower()
    wanted = entity_path.strip("/").lower()
    return not granted or wanted == granted or wanted.startswith(granted + "/")


_SECRETS = re.compile(r"(SharedAccessKey=|sig=|SharedAccessSignature\s+)[^;&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every key, signature or token replaced by ``***``."""
    return _SECRETS.sub(lambda m: m.group(1) + "***", text)


def describe_failure(exc: BaseException) -> str:
    """One line for a failed SDK call; keys and signatures are redacted."""
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))

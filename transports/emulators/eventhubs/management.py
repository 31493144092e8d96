"""The local endpoint's two request/response nodes: ``$cbs`` (put-token) and ``$management`` (READ).

Both answer with a message whose application properties carry ``status-code`` and
``status-description`` and whose correlation id is the request's message id: that is
all the SDK reads. Secrets stay out of every reply and log line: a refused token is
answered with the reason (expired, wrong key name, bad signature), never the token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.eventhub._pyamqp._decode import decode_payload

from iotbench.transports.emulators.eventhubs.amqp import reply_message
from iotbench.transports.emulators.eventhubs.hub import Hub, Refused
from iotbench.transports.sas import SasError

__all__ = ["put_token", "read_entity"]

Authorize = Callable[[str], tuple[str, float]]  # token -> (resource granted, expiry); raises SasError


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def put_token(authorize: Authorize, payload: bytes) -> tuple[bytes, tuple[str, float] | None, str | None]:
    """(reply, what the token grants or None, why it was refused or None) for one put-token request."""
    message = decode_payload(memoryview(payload))
    correlation = message.properties.message_id if message.properties else None
    try:
        granted = authorize(str(_text(message.value)))
    except SasError as exc:
        return reply_message(correlation, 401, f"InvalidSignature: {exc}"), None, str(exc)
    return reply_message(correlation, 202, "Accepted"), granted, None


def read_entity(hub: Hub, authorize: Authorize, payload: bytes) -> bytes:
    """The reply to a ``$management`` READ of the hub or of one of its partitions."""
    message = decode_payload(memoryview(payload))
    props = {_text(k): _text(v) for k, v in (message.application_properties or {}).items()}
    correlation = message.properties.message_id if message.properties else None
    try:
        authorize(str(props.get("security_token", "")))
    except SasError as exc:
        return reply_message(correlation, 401, f"Unauthorized: {exc}")
    if props.get("operation") != "READ" or str(props.get("name", "")).lower() != hub.name.lower():
        return reply_message(
            correlation, 404, f"unknown entity {props.get('name')!r} or operation {props.get('operation')!r}"
        )
    if props.get("type") == "com.microsoft:eventhub":
        return reply_message(correlation, 200, "OK", hub.properties())
    if props.get("type") == "com.microsoft:partition":
        try:
            return reply_message(correlation, 200, "OK", hub.partition(str(props.get("partition"))).properties())
        except Refused as exc:
            return reply_message(correlation, exc.status, exc.description)
    return reply_message(correlation, 400, f"unknown type {props.get('type')!r}")

"""JSON through the standard library: the labelled reference, not a contender.

This is what the reference project's habit ("UTF-8 JSON") costs when written with
nothing but the standard library: compact separators, ISO 8601 timestamps. The
fast path (``json``) is measured against it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import msgspec
from msgspec.structs import asdict

from iotbench.codecs.base import CodecFunctions
from iotbench.codecs.msgspec_support import converting_functions
from iotbench.model.telemetry import Reading

name = "json-stdlib"
label = "JSON (stdlib json, reference)"
binary = False
library = "json"
# json.loads: JSONDecodeError, UnicodeDecodeError (bytes that are not UTF-8), RecursionError (deep nesting)
errors = (ValueError, RecursionError, msgspec.ValidationError)


def _iso(value: datetime) -> str:
    return value.isoformat()


def for_model(model: type) -> CodecFunctions:
    """``json.dumps`` of each reading's fields; ``default`` writes the timestamp as ISO 8601."""
    dumps = partial(json.dumps, separators=(",", ":"), default=_iso)

    def encode(reading: Reading) -> bytes:
        return dumps(asdict(reading)).encode()

    def encode_batch(readings: Sequence[Reading]) -> bytes:
        return dumps([asdict(r) for r in readings]).encode()

    return converting_functions(model, encode, encode_batch, json.loads)


encode, decode, encode_batch, decode_batch = for_model(Reading)

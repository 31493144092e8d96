"""JSON through msgspec: the fast path for the format the reference project used.

Field names travel in every event (the cost ``msgpack-array`` shows), timestamps as
RFC 3339 strings. ``json-stdlib`` is the same JSON through the standard library,
kept as the reference the fast path is measured against.
"""

from __future__ import annotations

from functools import partial

import msgspec

from iotbench.codecs.msgspec_support import MSGSPEC_ERRORS, typed_functions
from iotbench.model.telemetry import Reading

name = "json"
label = "JSON (msgspec)"
binary = False
library = "msgspec"
errors = MSGSPEC_ERRORS

for_model = partial(typed_functions, msgspec.json)
encode, decode, encode_batch, decode_batch = for_model(Reading)

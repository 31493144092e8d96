"""MessagePack through msgspec: the same map of field names as JSON, in binary.

The msgspec variant of ``msgpack``: it encodes the Struct directly and decodes into
a typed ``Reading`` without an intermediate dict. Timestamps are MessagePack's
timestamp extension (-1), as with the ``msgpack`` library.
"""

from __future__ import annotations

from functools import partial

import msgspec

from iotbench.codecs.msgspec_support import MSGSPEC_ERRORS, typed_functions
from iotbench.model.telemetry import Reading

name = "msgpack-msgspec"
label = "MessagePack (msgspec)"
binary = True
library = "msgspec"
errors = MSGSPEC_ERRORS

for_model = partial(typed_functions, msgspec.msgpack)
encode, decode, encode_batch, decode_batch = for_model(Reading)

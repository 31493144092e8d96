"""MessagePack through the ``msgpack`` library, the one the design card names.

A reading is a map of field names (the same shape as JSON); the timestamp is
MessagePack's timestamp extension type (-1), which carries microseconds exactly.
A batch is a MessagePack array of those maps. ``msgpack-msgspec`` is the same
bytes through msgspec; ``msgpack-array`` drops the field names.
"""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec
from msgspec.structs import asdict

from iotbench.codecs.base import CodecFunctions
from iotbench.codecs.msgspec_support import converting_functions
from iotbench.model.telemetry import Reading

name = "msgpack"
label = "MessagePack (msgpack)"
binary = True
library = "msgpack"
# unpackb: ExtraData, FormatError, StackError (all ValueError) and ValueError itself
errors = (ValueError, msgspec.ValidationError)


def for_model(model: type) -> CodecFunctions:
    """MessagePack maps for ``model``; the packer turns each Struct into a dict itself (``default``)."""
    # A Packer is reused (about twice as fast as packb); it is not thread-safe, and
    # the publisher encodes on one thread.
    packer = msgpack.Packer(datetime=True, default=asdict)
    return converting_functions(model, packer.pack, packer.pack, _loads)


def _loads(payload: bytes) -> Any:
    # unpackb bounds every container and string by the payload's length (msgpack >= 1.0);
    # timestamp=3 gives aware UTC datetimes
    return msgpack.unpackb(payload, timestamp=3)


encode, decode, encode_batch, decode_batch = for_model(Reading)

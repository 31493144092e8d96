"""Where failed events go: a JSON-lines file with the reason and what failed.

Nothing is dropped silently: a payload that cannot be decoded is kept whole
(base64), a reading that fails validation is kept decoded, and a send that failed
keeps the (device, seq) pairs it carried.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

__all__ = ["DeadLetter"]

MAX_REASONS = 20


class DeadLetter:
    """``dl.payload(b'...', 'json: truncated')``; ``dl.reasons`` counts distinct reasons."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: BinaryIO | None = None
        self._encoder = msgspec.json.Encoder()
        self.count = 0
        self.reasons: Counter[str] = Counter()

    def _write(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab")
        self._handle.write(self._encoder.encode(record) + b"\n")
        self.count += 1
        reason = str(record["reason"])[:200]
        if reason in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[reason] += 1

    def payload(self, payload: bytes, reason: str, **extra: Any) -> None:
        self._write({"at": time.time(), "reason": reason, "payload_b64": base64.b64encode(payload).decode(), **extra})

    def reading(self, reading: Any, reason: str) -> None:
        self._write({"at": time.time(), "reason": reason, "reading": reading})

    def events(self, pairs: list[tuple[str, int]], reason: str) -> None:
        self._write({"at": time.time(), "reason": reason, "events": pairs})

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

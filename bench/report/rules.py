"""The decision's vocabulary: its constants, its record and the helpers its parts share.

``decision`` makes the choice and ``changes`` says when it would change; both read these,
so neither imports the other.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from iotbench.model.cost import Scenario
from iotbench.model.sustain import SHARE

__all__ = [
    "BYTES",
    "EH_LIMITS",
    "NEW_CONNECTION_VALUES",
    "P99",
    "PUBLISH_P99",
    "REFERENCE_TRANSPORTS",
    "SCENARIO",
    "SUSTAINED",
    "Decision",
    "code",
    "rank_by",
    "smallest_batch",
]

REFERENCE_TRANSPORTS = frozenset({"inprocess"})
SUSTAINED = SHARE  # one rule: iotbench.model.sustain
P99 = "latency_e2e_received_p99_ms"
PUBLISH_P99 = "latency_publish_p99_ms"
BYTES = "payload_bytes_mean"
SCENARIO = Scenario()  # 100,000 devices, one reading a minute
EH_LIMITS = "Azure Event Hubs quotas, Standard tier (learn.microsoft.com event-hubs-quotas; FACTS.md)"
NEW_CONNECTION_VALUES = {"new", "per_request", "per-request", "new_connection", "new-connection", "close"}


@dataclass
class Decision:
    protocol: str | None = None
    serialization: str | None = None
    protocol_runner_up: str | None = None
    serialization_runner_up: str | None = None
    batch: int | None = None
    reasons: list[str] = field(default_factory=list)
    azure: list[str] = field(default_factory=list)  # what the choice means in Event Hubs units
    runner_up: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # what this run lacks to answer fully
    excluded: list[str] = field(default_factory=list)  # configurations that did not qualify, and why


def code(text: str) -> str:
    return f"<code>{html.escape(str(text))}</code>"


def smallest_batch(rows: Any) -> Any:
    return rows[rows["batch"] == rows["batch"].min()]


def rank_by(rows: Any, by: str, metric: str) -> list[tuple[str, Any]]:
    groups = [(name, g) for name, g in rows.groupby(by, sort=True) if g[metric].notna().any()]
    return sorted(groups, key=lambda item: (item[1][metric].median(), item[0]))

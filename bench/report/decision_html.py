"""The decision as HTML: the answer first, then the reasons, the runner-up, what changes it."""

from __future__ import annotations

from iotbench.report.page import note
from iotbench.report.rules import Decision, code

__all__ = ["decision_section"]


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def decision_section(d: Decision) -> str:
    protocol = code(d.protocol) if d.protocol else "<em>not decided from this run</em>"
    serialization = code(d.serialization) if d.serialization else "<em>not decided from this run</em>"
    parts = [
        '<div class="decision" id="the-decision">',
        f'<p class="answer">Protocol: {protocol}. Serialization: {serialization}.</p>',
    ]
    if d.reasons:
        parts.append("<h3>Why</h3>" + _list(d.reasons))
    if d.azure:
        parts.append("<h3>On Azure</h3>" + _list(d.azure))
    if d.runner_up:
        parts.append("<h3>Runner-up</h3>" + _list(d.runner_up))
    if d.changes:
        parts.append("<h3>When the answer changes</h3>" + _list(d.changes))
    if d.excluded:
        parts.append("<h3>Did not qualify</h3>" + _list(d.excluded))
    if d.gaps:
        parts.append("<h3>What this run cannot tell</h3>" + "".join(note(g) for g in d.gaps))
    parts.append("</div>")
    return "\n".join(parts)

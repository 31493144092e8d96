"""Minimal direct client loops: what each protocol's client library does alone, the harness's yardstick.

Each loop sends the same 56-byte ``msgpack-array`` payload the harness sends at batch 1, as fast as
its library allows, to a server started by the project's own launcher (the way a cell starts it),
while a receiver in a second process counts what arrives. ``measure(name, workdir)`` reports
delivered (and acknowledged) events/s over a fixed window after a warm-up; the harness-overhead
benchmark (``tests/benchmarks/test_harness_overhead.py``) sets the harness cell beside it.

A loop is a module per protocol (``mqtt``, ``amqp``, ``kafka``, ``http``: what each loop does and why
is in its docstring) registered in ``LOOPS``; ``base`` holds what they share and does the measuring.
A protocol's module is imported when one of its loops is first asked for, so a machine without its
client library loses only those loops and is told what to install.

Run: ``python -m iotbench.studies.direct_loops [LOOP ...]`` (prints a Markdown table).
"""

from __future__ import annotations

from pathlib import Path

from iotbench.registry import Plugin, Registry
from iotbench.studies.direct_loops.base import (
    DURATION_S,
    WARMUP_S,
    DirectLoop,
    DirectLoopError,
    LoopResult,
    Timeline,
    measure_loop,
    sample_payload,
)

__all__ = ["LOOPS", "DirectLoop", "DirectLoopError", "LoopResult", "Timeline", "measure", "sample_payload"]


def _in(module: str, attribute: str) -> Plugin:
    """A loop in this package's ``module``, whose client library comes with the extra of the same name."""
    return Plugin(f"{__name__}.{module}:{attribute}", f"pip install 'iotbench[{module}]'")


LOOPS = Registry(
    "direct loop",
    {
        "amqp-engine": _in("amqp", "ENGINE"),
        "amqp-reactor": _in("amqp", "REACTOR"),
        "http-one": _in("http", "ONE"),
        "http-pool": _in("http", "POOL"),
        "kafka": _in("kafka", "PRODUCER"),
        "mqtt-qos0": _in("mqtt", "QOS0"),
        "mqtt-qos1": _in("mqtt", "QOS1"),
    },
    group="",
)


def measure(
    name: str,
    workdir: Path,
    *,
    duration_s: float = DURATION_S,
    warmup_s: float = WARMUP_S,
    payload: bytes | None = None,
) -> LoopResult:
    """Run loop ``name`` for ``warmup_s + duration_s`` against a fresh server under ``workdir``.

    >>> measure("mqtt-qos1", Path("/tmp/x"), duration_s=5).delivered_eps  # doctest: +SKIP
    21153.0
    """
    loop: DirectLoop = LOOPS.load(name)
    return measure_loop(name, loop, workdir, duration_s=duration_s, warmup_s=warmup_s, payload=payload)

"""A receiver that breaks mid-cell fails the cell with the reason, for every transport family.

The consumer's ``deliver`` is made to raise after a few payloads -- what a bug or an
exhausted machine does on the receiving side. Before, HTTP and Kafka receivers kept the
error to themselves, paho and proton logged it and went on, and the cell came out "ok"
with unexplained losses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import need_server

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.transports import TRANSPORTS, get_transport

pytestmark = pytest.mark.server  # every test here starts a server

FAMILIES = ["amqp", "coap", "eventhubs", "eventhubs-https", "http", "inprocess", "kafka", "mqtt"]
BREAK_AT = 20  # payloads delivered before the consumer raises


def _breaking(family: str) -> type:
    """The family's transport, with a receiver whose consumer raises after BREAK_AT payloads.

    A class of this module (``Breaking_<family>``), so the receiving side's own process
    imports it by name like any registered transport.
    """
    base = get_transport(family)

    async def open_receiver(self: Any, deliver: Any) -> Any:
        seen = [0]

        def breaking(payload: bytes) -> None:
            seen[0] += 1
            if seen[0] == BREAK_AT:
                raise RuntimeError("consumer ran out of luck")
            deliver(payload)

        return await base.open_receiver(self, breaking)

    name = f"Breaking_{family.replace('-', '_')}"
    return type(name, (base,), {"open_receiver": open_receiver, "__qualname__": name, "__module__": __name__})


for _family in FAMILIES:
    _cls = _breaking(_family)
    globals()[_cls.__name__] = _cls


@pytest.mark.parametrize("transport", FAMILIES)
def test_deliver_raising_mid_cell_fails_the_cell(tmp_path, transport):
    name = f"breaking-{transport}"
    TRANSPORTS.register(name, f"{__name__}:Breaking_{transport.replace('-', '_')}")
    try:
        spec = parse_spec(
            {
                "codecs": ["json"],
                "transports": [name],
                "devices": 100,
                "interval_s": 1.0,
                "duration_s": 2.0,
                "warmup_s": 0.0,
                "drain_timeout_s": 3.0,
            }
        )
        result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    finally:
        TRANSPORTS.unregister(name)
    if result.status == "failed" and "not installed" in str(result.error):
        need_server(result.error)
    assert result.status == "failed", f"cell came out ok with {result.events_lost} lost"
    assert "receiver failed" in result.error and "consumer ran out of luck" in result.error, result.error

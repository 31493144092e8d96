"""A receiver that breaks mid-cell fails the cell with the reason, for every transport family.

The consumer's ``deliver`` is made to raise after a few payloads -- what a bug or an
exhausted machine does on the receiving side. Before, HTTP and Kafka receivers kept the
error to themselves, paho and proton logged it and went on, and the cell came out "ok"
with unexplained losses.
"""

from __future__ import annotations

import asyncio

import pytest
from support import need_server

from iotbench.model.spec import parse_spec
from iotbench.pipeline.consumer import Consumer
from iotbench.pipeline.runner import run_cell

pytestmark = pytest.mark.server  # every test here starts a server

FAMILIES = {
    "coap": {},
    "inprocess": {},
    "mqtt": {},
    "amqp": {},
    "http": {},
    "kafka": {},
    "eventhubs": {},
    "eventhubs-https": {},
}


@pytest.mark.parametrize("transport", sorted(FAMILIES))
def test_deliver_raising_mid_cell_fails_the_cell(tmp_path, monkeypatch, transport):
    real = Consumer.deliver
    seen = {"payloads": 0}

    def breaking(self: Consumer, payload: bytes) -> None:
        seen["payloads"] += 1
        if seen["payloads"] == 20:
            raise RuntimeError("consumer ran out of luck")
        real(self, payload)

    monkeypatch.setattr(Consumer, "deliver", breaking)
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport],
            "devices": 100,
            "interval_s": 1.0,
            "duration_s": 2.0,
            "warmup_s": 0.0,
            "drain_timeout_s": 3.0,
            **({"transport_options": {transport: FAMILIES[transport]}} if FAMILIES[transport] else {}),
        }
    )
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    if result.status == "failed" and "not installed" in str(result.error):
        need_server(result.error)
    assert seen["payloads"] >= 20
    assert result.status == "failed", f"cell came out ok with {result.events_lost} lost"
    assert "receiver failed" in result.error and "consumer ran out of luck" in result.error, result.error

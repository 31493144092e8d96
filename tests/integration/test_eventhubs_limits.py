"""Azure's limits on the local endpoint, seen through whole cells of the runner.

Throughput units (ServerBusy), the connection limit and the publication size limit:
each cell must finish, count what the limit did, and account for every event --
whatever did not arrive is a counted, explained failure, never a silent loss.
"""

from __future__ import annotations

import asyncio

import pytest
from support import need_modules, need_server

need_modules("azure.eventhub", extra="eventhubs")


from iotbench.model.spec import parse_spec  # noqa: E402
from iotbench.pipeline.runner import run_cell  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server


def _run(tmp_path, *, devices: int, batch: int = 1, connections: int = 2, duration_s: float = 3.0, **options):
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["eventhubs"],
            "batch": [batch],
            "connections": [connections],
            "devices": [devices],
            "interval_s": [1.0],
            "duration_s": duration_s,
            "warmup_s": 1.0,
            "drain_timeout_s": 10.0,
            "transport_options": {"eventhubs": options},
        }
    )
    try:
        return asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    except ImportError as exc:  # pragma: no cover
        need_server(str(exc))


def _every_event_accounted(result) -> None:
    assert result.status == "ok", result.error
    assert result.events_sent == result.events_acked + result.events_failed
    assert result.events_lost == result.events_failed, "a loss that no failure explains"
    assert result.events_stored == result.events_acked


def test_a_default_cell_runs_under_the_units_its_rate_needs_one_event_per_publication(tmp_path):
    # 400 events/s of ~250-byte JSON readings: the cost model buys 1 TU; batch 1 is one publication per reading
    result = _run(tmp_path, devices=400, duration_s=2.0)
    counters = result.transport_counters
    _every_event_accounted(result)
    assert counters["limit_throughput_units"] == 1 and counters["limit_max_connections"] == 5000, counters
    assert counters["server_throttled"] == 0, counters
    assert counters["server_publications"] == counters["server_events"] == result.sends == result.events_sent > 0


def test_grouped_sends_are_a_named_option_that_shows_in_the_cell_id():
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["eventhubs"],
            "batch": [1],
            "transport_options": {"eventhubs": {"group_sends": [False, True]}},
        }
    )
    assert [c.id.split("/")[1] for c in spec.cells()] == ["eventhubs[group_sends=False]", "eventhubs[group_sends=True]"]


def test_one_throughput_unit_throttles_2000_events_per_second_and_every_event_is_accounted(tmp_path):
    result = _run(tmp_path, devices=2000, throughput_units=1, partitioning="id", busy_backoff_s=1.0)
    counters = result.transport_counters
    _every_event_accounted(result)
    assert counters.get("sends_throttled", 0) > 0 and counters.get("retries", 0) > 0, counters
    assert counters["server_throttled"] >= counters["sends_throttled"], counters  # the SDK re-sends once itself
    assert counters["events_throttled"] >= counters["sends_throttled"]
    # the cost shows in publish latency: a retried send waited at least one back-off
    assert result.latency_ms["publish"]["max"] >= 1000.0


def test_connection_limit_refuses_per_device_producers_clearly_and_the_cell_goes_on(tmp_path):
    # the consumer takes one connection per partition (4): 2 of 6 producers fit under a limit of 6
    result = _run(tmp_path, devices=60, connections=6, duration_s=2.0, max_connections=6, partitioning="key")
    counters = result.transport_counters
    _every_event_accounted(result)
    assert counters.get("connections_refused", 0) >= 1, counters
    assert counters["server_refused_connections"] >= counters["connections_refused"]
    assert result.events_failed > 0 and result.events_stored > 0
    refused = [r for r in result.error_samples if "allows 6 AMQP connections" in r]
    assert refused and sum(result.error_samples[r] for r in refused) == result.events_failed


def test_a_publication_over_the_size_limit_is_refused_and_counted(tmp_path):
    # a JSON reading is ~250 bytes; the SDK learns the 200-byte limit from the link, as from Azure's
    result = _run(tmp_path, devices=50, duration_s=2.0, max_message_bytes=200)
    _every_event_accounted(result)
    assert result.events_stored == 0 and result.events_failed == result.events_sent > 0
    assert any("exceeds the 200-byte publication limit" in r for r in result.error_samples), result.error_samples


def test_the_hub_refuses_oversize_and_over_rate_publications_with_the_service_conditions():
    from iotbench.transports.emulators.eventhubs.amqp import StoredEvent
    from iotbench.transports.emulators.eventhubs.hub import Hub, HubLimits, Refused

    async def scenario():
        hub = Hub("telemetry", 2, HubLimits(throughput_units=1, max_message_bytes=1000))
        event = StoredEvent(b"", b"x" * 10, {}, 10)
        with pytest.raises(Refused) as big:
            hub.publish([event], 1001, partition=None, key=None)
        assert big.value.condition == "amqp:link:message-size-exceeded" and big.value.status == 413
        hub.publish([event] * 1000, 1000, partition=None, key="dev-1")  # one second's allowance at once
        with pytest.raises(Refused) as busy:
            hub.publish([event], 10, partition=None, key="dev-1")
        assert busy.value.condition == "com.microsoft:server-busy" and busy.value.status == 503
        assert hub.stats == {**hub.stats, "events": 1000, "throttled": 1, "oversize": 1}
        assert hub.route("dev-1") is hub.route("dev-1")  # a key sticks to its partition

    asyncio.run(scenario())

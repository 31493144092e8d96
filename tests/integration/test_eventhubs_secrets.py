"""Event Hubs cells fail fast on a wrong endpoint, and never write a connection string's key.

``IOTBENCH_EVENTHUB_CONNECTION_STRING`` is the switch to a real namespace; here it
points at endpoints started by the test (a silent port, a closed port, the project's
own endpoint with a known key), so the cloud path runs without the cloud.
"""

from __future__ import annotations

import socket
from urllib.parse import quote, quote_plus

import pytest
from support import need_modules

need_modules("azure.eventhub", extra="eventhubs")


from iotbench.model.spec import parse_spec  # noqa: E402
from iotbench.pipeline.runner import run_matrix  # noqa: E402
from iotbench.transports.eventhubs.transport import CONNECTION_STRING_ENV  # noqa: E402
from iotbench.transports.sas import ConnectionString  # noqa: E402
from iotbench.transports.servers.eventhubs import EndpointSettings, LocalEventHubs  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

KEY = "Zm9vYmFyLXNlY3JldC1rZXktZm9yLXRoZS10ZXN0"  # looks like a real key; must appear nowhere


def _spec(connections: int = 2, call_timeout_s: float = 10.0):
    return parse_spec(
        {
            "codecs": ["json"],
            "transports": ["eventhubs"],
            "connections": [connections],
            "devices": [40],
            "interval_s": [1.0],
            "duration_s": 1.5,
            "warmup_s": 0.5,
            "drain_timeout_s": 5.0,
            "transport_options": {"eventhubs": {"call_timeout_s": call_timeout_s, "partitioning": "key"}},
        }
    )


def _cloud(monkeypatch, port: int, key: str = KEY) -> None:
    text = ConnectionString(f"sb://127.0.0.1:{port}/", "RootManageSharedAccessKey", key, "telemetry", True).render()
    monkeypatch.setenv(CONNECTION_STRING_ENV, text)


@pytest.mark.parametrize("peer", ["silent", "closed"])
def test_a_wrong_endpoint_fails_the_cell_within_the_call_timeout_with_a_clear_reason(peer, tmp_path, monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if peer == "silent":
            listener.listen(16)  # the kernel completes connects; nothing ever answers
        else:
            listener.close()  # nothing listens: connects are refused
        _cloud(monkeypatch, port)
        [result] = run_matrix(_spec(call_timeout_s=2.0), tmp_path / "out")
    assert result.status == "failed"
    assert f"127.0.0.1:{port}" in result.error and "within 2 s" in result.error, result.error
    expected = "does not answer as Event Hubs" if peer == "silent" else "nothing accepts connections"
    assert expected in result.error, result.error
    assert result.elapsed_s < 2.0 + 15.0  # the bound plus closing; the SDK alone would wait far longer
    assert KEY not in result.error


def test_the_key_appears_in_no_result_file_log_or_dead_letter(tmp_path, monkeypatch, capfd, caplog):
    # a limit of 5 connections: the consumer takes 4, so some of the 3 producers are refused and their
    # events go to the dead-letter file with the reason -- the paths where a secret could leak
    with LocalEventHubs(tmp_path / "endpoint", EndpointSettings(max_connections=5)) as endpoint:
        endpoint_key = ConnectionString.parse(endpoint.connection_string).key
        _cloud(monkeypatch, endpoint.port, endpoint_key)
        [result] = run_matrix(_spec(connections=3), tmp_path / "out")
    assert result.status == "ok", result.error
    assert result.events_failed > 0 and result.dead_letter, "the scenario must exercise the dead-letter path"
    forms = {endpoint_key, quote_plus(endpoint_key), quote(endpoint_key, safe="")}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "eventhubs.log" for p in files) and any(p.name == "dead-letter.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip

            data = gzip.decompress(data)
        for form in forms:
            assert form.encode() not in data, f"the key leaked into {path.relative_to(tmp_path)}"
    captured = capfd.readouterr()
    logged = captured.out + captured.err + caplog.text
    for form in forms:
        assert form not in logged, "the key leaked into the run's log output"

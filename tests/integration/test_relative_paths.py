"""The CLI run from any working folder, with a relative ``--out`` and with none at all.

Servers start in their own working folders: a relative path handed to them (mosquitto's
config, RabbitMQ's cookie file, Azurite's location) breaks every cell of that server. The
other tests pass absolute ``tmp_path`` folders and never saw it; these run the command the
way the README does, from a working folder the test owns, over one cell of every transport
that starts a server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import IN_CI, need_server

pytestmark = pytest.mark.server  # every test here starts a server

# one cell per launched server: mosquitto, amqtt, RabbitMQ, Tansu, uvicorn, granian, hypercorn,
# the CoAP gateway, the Event Hubs endpoint (AMQP and REST) and Azurite (the consumer's checkpoint store)
SPEC = """
codecs = ["json"]
devices = 40
interval_s = 1
duration_s = 1
warmup_s = 0
drain_timeout_s = 5

[[matrix]]
transports = ["mqtt"]
transport_options.mqtt = {broker = ["mosquitto", "amqtt"]}

[[matrix]]
transports = ["amqp", "kafka", "eventhubs-https", "coap"]

[[matrix]]
transports = ["http"]
transport_options.http = {mode = ["keep-alive", "http2"]}

[[matrix]]
transports = ["http"]
transport_options.http = {mode = "http2", server = "hypercorn"}

[[matrix]]
transports = ["eventhubs"]
transport_options.eventhubs = {checkpoint = "blob"}
"""
SERVERS = {"mosquitto": "mosquitto", "amqp": "rabbitmq-server", "azurite": "azurite-blob"}


def _servers_present() -> None:
    import shutil

    for name, binary in SERVERS.items():
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            need_server(f"{name} is not installed ({binary}): bash scripts/setup installs it")


@pytest.mark.parametrize("out", ["runs/relative", None], ids=["relative-out", "no-out"])
def test_every_server_cell_is_ok_from_a_relative_folder(tmp_path: Path, out: str | None) -> None:
    _servers_present()
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "spec.toml").write_text(SPEC)
    argv = [sys.executable, "-m", "iotbench.cli", "run", "spec.toml", "--no-report"]
    if out:
        argv += ["--out", out]
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600)
    results = list(work.glob("runs/relative/results.jsonl" if out else "reports/run-*/results.jsonl"))
    assert len(results) == 1, f"no results under {work}: {done.stderr[-2000:]}"
    rows = [json.loads(line) for line in results[0].read_text().splitlines() if line.strip()]
    not_ok = {r["cell"]: r["error"] for r in rows if r["status"] != "ok" or r["events_lost"]}
    if not_ok and not IN_CI and all("not installed" in str(e) for e in not_ok.values()):
        need_server("; ".join(sorted(set(map(str, not_ok.values())))))
    assert len(rows) == 10 and not not_ok, not_ok
    assert done.returncode == 0, done.stderr[-2000:]

"""mosquitto, amqtt and RabbitMQ (+ its epmd) start, serve and stop leaving nothing behind.

"Nothing" is checked from the outside: every process whose working folder is the
server's folder (ServerProcess starts servers there; their children inherit it --
beam, epmd, erl_child_setup, inet_gethost) and every TCP port those processes
listened on. Also after a failed start and after a cell that failed mid-way.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from support import alive, assert_no_leftovers, need_server

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.transports import TransportError
from iotbench.transports.servers.process import port_open


def processes_in(folder: Path) -> list[int]:
    """Pids of live processes whose current directory is under ``folder``."""
    folder = folder.resolve()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if (cwd == folder or folder in cwd.parents) and alive(int(entry)):
            found.append(int(entry))
    return found


def listening_ports(pids: list[int]) -> list[int]:
    """TCP ports in LISTEN state held by any of ``pids`` (via socket inodes)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def _starter(name: str):
    if name == "mosquitto":
        from iotbench.transports.servers.mosquitto import start_mosquitto

        return start_mosquitto
    if name == "amqtt":
        from iotbench.transports.servers.amqtt import start_amqtt

        return start_amqtt
    from iotbench.transports.servers.rabbitmq import start_rabbitmq

    return start_rabbitmq


def _start(name: str, folder: Path, **kwargs):
    try:
        return _starter(name)(folder, **kwargs)
    except TransportError as exc:
        if "not installed" in str(exc):
            need_server(str(exc))
        raise


@pytest.mark.server
@pytest.mark.parametrize("name", ["mosquitto", "amqtt", "rabbitmq"])
def test_server_stops_leaving_no_process_and_no_port(name, tmp_path):
    server = _start(name, tmp_path / name)
    try:
        assert port_open(server.port)
        pids = processes_in(tmp_path)
        ports = listening_ports(pids)
        assert server.port in ports
        if name == "rabbitmq":
            assert len(ports) >= 3, f"expected AMQP, distribution and epmd ports, got {ports}"
            assert set(server.pids) <= set(pids)
    finally:
        server.stop()
    assert_no_leftovers(pids, ports)
    assert_no_leftovers(processes_in(tmp_path), [])


@pytest.mark.server
def test_rabbitmq_that_is_not_ready_in_time_is_stopped_with_its_epmd(tmp_path):
    with pytest.raises(TransportError, match="not ready within"):
        _start("rabbitmq", tmp_path / "rabbitmq", ready_timeout=1.0)  # it needs ~3-5 s
    assert_no_leftovers(processes_in(tmp_path), [])


@pytest.mark.server
def test_a_rabbitmq_stop_that_finds_no_epmd_starts_no_detached_one(tmp_path):
    # Erlang programs start a detached `epmd -daemon` (cwd /, its own session) when none
    # answers; rabbitmqctl stop after our epmd died (a Ctrl-C mid-start) left one behind
    server = _start("rabbitmq", tmp_path / "rabbitmq")
    epmd_port = server.epmd.port
    server.epmd.stop()
    server.stop()
    time.sleep(1.0)
    assert not port_open(epmd_port), f"something listens on the run's epmd port {epmd_port} after stop"
    assert_no_leftovers(processes_in(tmp_path), [])


@pytest.mark.server
def test_mosquitto_that_exits_at_start_says_why(tmp_path):
    from iotbench.transports.servers import mosquitto as mosquitto_server

    with pytest.raises(TransportError, match="exited with code"):
        mosquitto_server.start_mosquitto(
            tmp_path, tls={"certfile": str(tmp_path / "missing.pem"), "keyfile": str(tmp_path / "missing.key")}
        )
    assert_no_leftovers(processes_in(tmp_path), [])


@pytest.mark.server
@pytest.mark.parametrize("transport", ["mqtt", "amqp"])
def test_cell_that_fails_after_the_server_started_leaves_nothing(transport, tmp_path, monkeypatch):
    import iotbench.pipeline.runner as runner

    seen: dict[str, list[int]] = {}

    def failing_sides(*args, **kwargs):  # the runner builds the sides' task once the servers run
        seen["pids"] = processes_in(tmp_path)
        seen["ports"] = listening_ports(seen["pids"])
        raise TransportError("injected failure after the server started")

    monkeypatch.setattr(runner, "SideTask", failing_sides)
    spec = parse_spec({"codecs": ["json"], "transports": [transport], "devices": 10, "duration_s": 1})
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    if "not installed" in (result.error or ""):
        need_server(result.error)
    assert result.status == "failed" and "injected failure" in result.error
    assert seen["pids"] and seen["ports"], "the server should have been running when the cell failed"
    assert_no_leftovers(seen["pids"], seen["ports"])
    assert_no_leftovers(processes_in(tmp_path), [])


@pytest.mark.server
@pytest.mark.parametrize("transport", ["mqtt", "amqp"])
def test_ctrl_c_during_a_run_stops_the_servers(transport, tmp_path):
    import signal
    import subprocess
    import sys

    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'codecs = ["json"]\ntransports = ["{transport}"]\ndevices = 100\ninterval_s = 1\nduration_s = 60\n'
    )
    out = tmp_path / "run"
    cli = subprocess.Popen(
        [sys.executable, "-m", "iotbench.cli", "run", str(spec), "--out", str(out), "--no-report"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores it
    )
    try:
        deadline = time.monotonic() + 60
        while not processes_in(out) and time.monotonic() < deadline and cli.poll() is None:
            time.sleep(0.1)
        pids = processes_in(out)
        if not pids:
            need_server(f"no {transport} server started: {cli.stderr.read().decode()[-300:] if cli.poll() else ''}")
        time.sleep(0.5)  # Ctrl-C while the server is still starting, or just running
        cli.send_signal(signal.SIGINT)
        assert cli.wait(60) == 130
    finally:
        if cli.poll() is None:
            cli.kill()
    assert_no_leftovers(pids + processes_in(out), [])

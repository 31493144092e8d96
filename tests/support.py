"""Helpers shared by the tests (``pythonpath = tests`` in pyproject)."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_server(reason: str) -> None:
    """Skip on a laptop that lacks a server; with CI=true a missing server is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} -- CI=true, so a missing server fails the test instead of skipping it")
    pytest.skip(reason)


def need_modules(*modules: str, extra: str) -> None:
    """Skip the calling test module when an optional extra is not installed, naming the fix.

    With CI=true a missing module fails instead: CI installs every extra (``.[dev]``).
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            reason = f"{module} is not installed: pip install -e '.[{extra}]'"
            if IN_CI:
                raise ImportError(f"{reason} -- CI=true, so this fails instead of skipping") from exc
            pytest.skip(reason, allow_module_level=True)


async def start_transport(transport, folder):
    """The transport deployed with its servers (``iotbench.pipeline.deploy``): stop it with
    ``await deployment.stop()``. A server that is not installed goes through ``need_server``."""
    from iotbench.pipeline.deploy import Deployment
    from iotbench.transports import TransportError

    deployment = Deployment(transport, folder)
    try:
        await deployment.start()
    except TransportError as exc:
        if "not installed" in str(exc):
            need_server(str(exc))
        raise
    return deployment


async def arrived(received: list[Any], count: int, timeout_s: float = 5.0) -> list[Any]:
    """``received`` once it holds ``count`` items, or after ``timeout_s`` (the caller asserts what came)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(received) < count and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return received


async def send_through(
    transport: Any, workdir: Any, items: list[tuple[str, bytes]], timeout_s: float = 5.0
) -> tuple[list[bytes], Any]:
    """Start ``transport``, send ``items`` (device, payload) on one sender, collect them at one
    receiver, close both and stop. Returns what arrived and the closed sender (for its counters)."""
    received: list[bytes] = []
    deployment = await start_transport(transport, workdir)
    try:
        receiver = await transport.open_receiver(received.append)
        sender = await transport.open_sender(0)
        for device, payload in items:
            await sender.send(device, payload)
        await arrived(received, len(items), timeout_s)
        await sender.close()
        await receiver.close()
    finally:
        await deployment.stop()
    return received, sender


def listening(port: int) -> bool:
    """Whether anything listens on 127.0.0.1:port (TCP)."""
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_no_leftovers(pids: list[int], ports: list[int]) -> None:
    """After a server stopped: none of its processes runs, none of its ports listens."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(map(alive, pids)) or any(map(listening, ports))):
        time.sleep(0.1)
    assert not [p for p in pids if alive(p)], f"processes left running: {[p for p in pids if alive(p)]}"
    assert not [p for p in ports if listening(p)], f"ports still listening: {[p for p in ports if listening(p)]}"


def cli(*args: str, cwd: Any = None) -> subprocess.CompletedProcess:
    """``iotbench ARGS`` as a user runs it: its own process, output captured, bounded."""
    return subprocess.run(
        [sys.executable, "-m", "iotbench.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def assert_spec_refused(tmp_path: Path, toml: str, expected: str) -> None:
    """``iotbench run`` of a spec holding ``toml``: one line containing ``expected``, exit code 2, no
    traceback, nothing written."""
    spec = tmp_path / "bad.toml"
    spec.write_text(toml + "\n")
    result = cli("run", str(spec), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # nothing ran

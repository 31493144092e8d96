"""Helpers shared by the tests (``pythonpath = tests`` in pyproject)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_server(reason: str) -> None:
    """Skip on a laptop that lacks a server; with CI=true a missing server is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} -- CI=true, so a missing server fails the test instead of skipping it")
    pytest.skip(reason)


async def start_transport(transport, folder):
    """``await transport.start(folder)``; a server that is not installed goes through ``need_server``."""
    from iotbench.transports import TransportError

    try:
        await transport.start(folder)
    except TransportError as exc:
        if "not installed" in str(exc):
            need_server(str(exc))
        raise
    return transport


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

"""What a process costs: CPU time and peak memory, from the operating system's own accounting.

Each side reads its own (``process_time``: every thread of the process, user + system;
``getrusage``'s ``ru_maxrss``: its resident-set high-water mark); the runner reads the servers'
from outside (psutil: each server process and every process it started).

A ``Reading`` is what a side knows at one instant: its CPU seconds, the events it has handled,
the codec bytes it has sent, and its sockets' counters (``iotbench.pipeline.sockets``). Two
readings -- at the measured window's start and end -- give the window's figures; readings of
several processes of a side add (``plus``).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from iotbench.pipeline.sockets import TcpCounters, tcp_counters

__all__ = ["Reading", "ServerMeter", "peak_rss_mb", "read_now", "tree_cpu_s", "tree_peak_rss_mb"]


@dataclass(frozen=True)
class Reading:
    cpu_s: float = 0.0
    events: int = 0  # sent (the sending side) or received (the receiving side) so far
    payload_bytes: int = 0  # codec bytes sent so far, after compression (the sending side)
    sends: int = 0
    tcp: TcpCounters = field(default_factory=TcpCounters)

    def plus(self, other: Reading) -> Reading:
        return Reading(self.cpu_s + other.cpu_s, self.events + other.events,
                       self.payload_bytes + other.payload_bytes, self.sends + other.sends,
                       self.tcp.plus(other.tcp))  # fmt: skip

    def minus(self, other: Reading) -> Reading:
        return Reading(self.cpu_s - other.cpu_s, self.events - other.events,
                       self.payload_bytes - other.payload_bytes, self.sends - other.sends,
                       self.tcp.minus(other.tcp))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_s": self.cpu_s, "events": self.events, "payload_bytes": self.payload_bytes,
                "sends": self.sends, "tcp": self.tcp.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reading:
        return cls(float(data["cpu_s"]), int(data["events"]), int(data["payload_bytes"]), int(data["sends"]),
                   TcpCounters.from_dict(data["tcp"]))  # fmt: skip


def read_now(events: int, payload_bytes: int = 0, sends: int = 0, sockets: bool = True) -> Reading:
    """This process, now: its CPU time, the counts given, and (``sockets``) its TCP counters."""
    return Reading(time.process_time(), events, payload_bytes, sends, tcp_counters() if sockets else TcpCounters())


def peak_rss_mb() -> float:
    """This process's peak resident set so far, MB (Linux reports ``ru_maxrss`` in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _tree(pids: list[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            out += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue  # gone: it counts no more
    return out


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes and every process they started, alive now."""
    total = 0.0
    for proc in _tree(pids):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def tree_peak_rss_mb(pids: list[int]) -> float:
    """The sum of the peak resident sets (VmHWM) of these processes and their children, MB."""
    total_kb = 0
    for proc in _tree(pids):
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                total_kb += next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
        except OSError:
            continue
    return total_kb / 1024.0


class ServerMeter:
    """The cell's servers' CPU seconds at the window's edges and their peak memory, read from outside
    (the runner's: the servers are its children); ``pids`` by server name, ``window`` wall clock."""

    def __init__(self) -> None:
        self.pids: dict[str, list[int]] = {}
        self.window: tuple[float, float] = (0.0, 0.0)
        self.start: dict[str, float] | None = None
        self.end: dict[str, float] | None = None
        self.peaks: dict[str, float] = {}

    def tick(self, now: float) -> None:
        if self.start is None and now >= self.window[0]:
            self.start = self._cpu()
        elif self.end is None and self.start is not None and now >= self.window[1]:
            self.end = self._cpu()

    def _cpu(self) -> dict[str, float]:
        return {name: tree_cpu_s(pids) for name, pids in self.pids.items()}

    def cpu_s(self) -> dict[str, float]:
        """Each server's CPU seconds in the window ({} when it was not read at both edges)."""
        if self.start is None or self.end is None:
            return {}
        return {name: self.end[name] - self.start[name] for name in self.pids}

    def read_peaks(self) -> None:
        self.peaks = {name: tree_peak_rss_mb(pids) for name, pids in self.pids.items()}

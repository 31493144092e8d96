"""What a run ran on: the machine and the versions of every library that matters."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from typing import Any

__all__ = ["machine_info", "library_versions"]

LIBRARIES = (
    "iotbench", "msgspec", "hdrhistogram", "orjson", "msgpack", "cbor2", "fastavro", "avro", "protobuf",
    "zstandard", "lz4", "paho-mqtt", "amqtt", "aiohttp", "httpx", "uvicorn", "hypercorn", "python-qpid-proton",
    "aiokafka", "azure-eventhub", "azure-storage-blob", "pandas", "matplotlib",
)


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    return {
        "host": hashlib.sha256(platform.node().encode()).hexdigest()[:12],  # which machine, without naming it
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
    }

"""What a run ran on: the machine and the versions of every library that matters.

The libraries are the harness's own and those each plugin declares (``libraries`` on a
transport class or a compression module; a codec module's ``library``), so a new plugin
brings its versions into run.json without an edit here.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from iotbench.codecs import CODECS
from iotbench.compression import COMPRESSIONS
from iotbench.registry import PluginUnavailable, Registry
from iotbench.transports import TRANSPORTS

__all__ = ["HARNESS_LIBRARIES", "machine_info", "library_versions", "plugin_libraries"]

# the runner and its figures (msgspec, HdrHistogram), the cold store's gzip (isal), the report (pandas, matplotlib)
HARNESS_LIBRARIES = ("iotbench", "msgspec", "hdrhistogram", "isal", "pandas", "matplotlib")


def _codec_libraries(codec: Any) -> tuple[str, ...]:
    """A codec declares its one library (``codecs/base.py``: ``library``, "" for the standard library)."""
    return (codec.library,) if codec.library else ()


def plugin_libraries(
    codecs: Iterable[str] | None = None,
    transports: Iterable[str] | None = None,
    compressions: Iterable[str] | None = None,
) -> list[str]:
    """The distributions the named plugins declare (None: every registered one usable here), in order, once each."""
    kinds: list[tuple[Registry, Iterable[str] | None, Callable[[Any], tuple[str, ...]]]] = [
        (CODECS, codecs, _codec_libraries),
        (COMPRESSIONS, compressions, lambda compression: tuple(compression.libraries)),
        (TRANSPORTS, transports, lambda transport: tuple(transport.libraries)),
    ]
    out: list[str] = []
    for registry, names, libraries in kinds:
        for name in registry.names() if names is None else names:
            try:
                plugin = registry.load(name)
            except PluginUnavailable:
                continue  # its libraries are not installed here: no version to record
            out.extend(libraries(plugin))
    return list(dict.fromkeys(out))


def library_versions(
    codecs: Iterable[str] | None = None,
    transports: Iterable[str] | None = None,
    compressions: Iterable[str] | None = None,
) -> dict[str, str]:
    """Installed versions of the harness's libraries and the plugins' (every registered plugin by default;
    name the run's to record only what it used): ``{"msgspec": "0.19.0", "paho-mqtt": "2.1.0", ...}``."""
    out = {}
    for name in dict.fromkeys([*HARNESS_LIBRARIES, *plugin_libraries(codecs, transports, compressions)]):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # the standard library (json), or an optional extra not installed
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

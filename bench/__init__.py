"""iotbench: which protocol and which serialization for IoT telemetry ingest -- measured.

The public API: the telemetry model, the plugin registries, the spec and the runner.

>>> import iotbench
>>> spec = iotbench.parse_spec({"codecs": ["json"], "devices": 100, "interval_s": 1, "duration_s": 2})
>>> len(spec.cells())
1
"""

from __future__ import annotations

from iotbench.codecs import CODECS, get_codec
from iotbench.model.results import SCHEMA_VERSION, CellResult, read_results
from iotbench.model.spec import Cell, Spec, SpecError, default_spec, load_spec, parse_spec
from iotbench.model.telemetry import Reading
from iotbench.pipeline.runner import run_cell, run_matrix
from iotbench.results_api import compare, intervals, load_results, load_timeseries
from iotbench.transports import TRANSPORTS, get_transport

__version__ = "0.1.0"

__all__ = [
    "CODECS",
    "SCHEMA_VERSION",
    "TRANSPORTS",
    "Cell",
    "CellResult",
    "Reading",
    "Spec",
    "SpecError",
    "__version__",
    "compare",
    "default_spec",
    "get_codec",
    "get_transport",
    "intervals",
    "load_results",
    "load_spec",
    "load_timeseries",
    "parse_spec",
    "read_results",
    "run_cell",
    "run_matrix",
]

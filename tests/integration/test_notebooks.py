"""Both notebooks run top to bottom against a small real run, and are committed without outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_support import small_run  # noqa: F401 - a fixture

pytestmark = pytest.mark.server  # every test here starts a server

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 120


@pytest.mark.parametrize("name", ["compare", "cost"])
def test_notebook_is_committed_clean_and_uses_the_public_api(name: str) -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks with outputs stripped"
    source = "\n".join(c.source for c in code)
    private = re.findall(r"iotbench(?:\.\w+)*\._\w+|from iotbench\.\w+ import _\w+", source)
    assert not private, f"private API used: {private}"
    modules = set(re.findall(r"from (iotbench(?:\.\w+)*) import", source)) | set(
        re.findall(r"import (iotbench\S*)", source)
    )
    assert modules <= {"iotbench", "iotbench.model.cost"}, f"only the public API: {modules}"


@pytest.mark.parametrize("name", ["compare", "cost"])
def test_notebook_executes_against_a_real_run(
    name: str, small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("IOTBENCH_RESULTS", str(small_run))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(small_run) in text, "the notebook did not read the run it was given"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "no chart drawn"

"""The analysis notebooks run top to bottom (on small sizes)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["sct_vs_per_message.ipynb", "sts_farm_capacity.ipynb", "query_a_sweep.ipynb"]
)
def test_notebook_executes(name, monkeypatch):
    monkeypatch.setenv("WSSIM_NOTEBOOK_SMALL", "1")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # the kernel's own view of the size: the small run is the one that ran
    notebook.cells.append(nbformat.v4.new_code_cell('print(f"SMALL={SMALL}")'))
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any(o.get("output_type") == "display_data" for o in outputs)  # plots were drawn
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert notebook.cells[-1].outputs[0]["text"] == "SMALL=True\n"

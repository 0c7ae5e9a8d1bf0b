"""docs/notebook.md is true: its Python cells run in order, in one namespace, from the root.

Each cell's last expression is what a notebook would display; it is evaluated and, when it has
one, its `_repr_html_` is rendered too (as Jupyter would), so a cell that only fails on display
fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebook.md"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def cells() -> list[str]:
    return _FENCE.findall(NOTEBOOK.read_text(encoding="utf-8"))


def test_the_walkthrough_has_cells():
    assert len(cells()) >= 8


def test_the_cells_run_in_order(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    shown = []
    for number, source in enumerate(cells(), start=1):
        tree = ast.parse(source, filename=f"notebook.md cell {number}")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = tree.body[:-1] if last is not None else tree.body
        exec(compile(ast.Module(body, []), f"cell {number}", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), f"cell {number}", "eval"), namespace)
            html = getattr(value, "_repr_html_", None)
            shown.append(html() if callable(html) else repr(value))
    assert "binance-usdm" in shown[0] and "<table>" in shown[0]  # the comparison's display
    assert all(shown)

"""Grid files are checked like every other input: every problem at once, located, with a hint."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import PolicyError
from engine.sweep import load_grid
from engine.sweep.figures import SUMMARY_FIGURES, figures_of

DATA = Path(__file__).resolve().parent / "data"

BAD = """\
title: Everything wrong
policies: [binance-usdm, binanse-usdm, binance-usdm]
scenarios: [short-crash.yaml]
books: [demo]
parameters:
  - name: fee
    policy: markets..parameters.clearance_fee_rate
    values: [0.001]
  - name: fee
    scenario: insurance_fund.shared
    transform: duration
    values: [1]
  - name: bad_debt
    operation: scale
    scenario: insurance_fund.shared
    values: [0, 2, 2]
    labels: [a]
  - name: mmr
    operation: scale
    policy: {binance-usdm: "tables.*.rows[*].maintenance_margin_rate", huobi: "x"}
    values: [1.2]
report:
  charts:
    - {figure: bad_debt, x: fuel}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_test_grid_loads_with_its_inputs_resolved_next_to_it():
    grid = load_grid(DATA / "grid.yaml")
    assert [p.reference for p in grid.policies] == ["binance-usdm", "huobi-linear-swap"]
    assert grid.scenarios[0].path == DATA / "short-crash.yaml"
    assert grid.scenarios[1].path.name == "slow-grind-down.yaml"  # shipped, by id
    assert grid.books[0].path == DATA / "book.jsonl"
    assert [p.name for p in grid.parameters] == ["crash_depth", "fund"]
    assert grid.size == 2 * 2 * 1 * 3 * 2 == len(grid.combinations()) * 4
    # no `report`: bad debt against each parameter, and a heatmap over the first two
    assert [(c.figure, c.x, c.y) for c in grid.charts] == [
        ("bad_debt", "crash_depth", None),
        ("bad_debt", "fund", None),
        ("bad_debt", "crash_depth", "fund"),
    ]


def test_every_problem_of_a_bad_grid_is_reported_at_once_and_located(tmp_path: Path):
    shutil.copy(DATA / "short-crash.yaml", tmp_path)
    path = write(tmp_path, "bad.yaml", BAD)
    with pytest.raises(PolicyError) as raised:
        load_grid(path)
    found = [(d.code, d.span.line, d.span.column) for d in raised.value.diagnostics if d.span]
    assert found == [
        ("E800", 2, 26),  # binanse-usdm
        ("E802", 2, 40),  # binance-usdm twice
        ("E803", 7, 13),  # markets..parameters
        ("E801", 9, 5),  # scenario and transform
        ("E802", 9, 11),  # fee twice
        ("E802", 13, 11),  # bad_debt is a figure
        ("E804", 16, 14),  # scale by 0
        ("E804", 16, 20),  # 2 twice
        ("E804", 17, 13),  # one label for three values
        ("E805", 20, 72),  # huobi is not a policy of the grid
        ("E806", 24, 29),  # fuel is no parameter
    ]
    messages = {d.code: d for d in raised.value.diagnostics}
    assert messages["E800"].hint is not None and "'binance-usdm'" in messages["E800"].hint
    assert messages["E806"].hint == "parameters: fee, fee, bad_debt, mmr"


def test_schema_problems_come_first_with_the_usual_codes(tmp_path: Path):
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        title: Schema problems
        policies: binance-usdm
        scenarios: []
        book: [demo]
        parameters:
          - {name: Fee, policy: a.b, values: [1], operation: multiply}
        """,
    )
    with pytest.raises(PolicyError) as raised:
        load_grid(path)
    found = [(d.code, d.span.line, d.span.column) for d in raised.value.diagnostics if d.span]
    assert found == [
        ("E101", 1, 1),  # books missing
        ("E103", 2, 11),
        ("E104", 3, 12),
        ("E102", 4, 1),  # book: did you mean books?
        ("E104", 6, 12),
        ("E104", 6, 54),
    ]


def test_a_policy_path_mapping_must_cover_every_policy(tmp_path: Path):
    path = write(
        tmp_path,
        "grid.yaml",
        """\
        title: One path missing
        policies: [binance-usdm, huobi-linear-swap]
        scenarios: [slow-grind-down]
        books: [demo]
        parameters:
          - name: mmr
            operation: scale
            policy: {binance-usdm: "tables.*.rows[*].maintenance_margin_rate"}
            values: [1.2]
        """,
    )
    with pytest.raises(PolicyError) as raised:
        load_grid(path)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.code == "E805"
    assert diagnostic.message == "parameter 'mmr' gives no path for policy 'huobi-linear-swap'"
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.column) == (8, 13)


def test_the_cli_reports_a_bad_grid_with_carets_and_exit_2(tmp_path: Path):
    shutil.copy(DATA / "short-crash.yaml", tmp_path)
    path = write(tmp_path, "bad.yaml", BAD)
    stdout, stderr = io.StringIO(), io.StringIO()
    from engine.cli.app import build_parser, run

    args = build_parser().parse_args(["sweep", str(path), "-o", str(tmp_path / "out")])
    assert run(args, stdout=stdout, stderr=stderr) == 2
    assert stdout.getvalue() == ""
    text = stderr.getvalue()
    assert f"{path}:7:13: error[E803]: the path 'markets..parameters.clearance_fee_rate'" in text
    assert "\n   | " + " " * 12 + "^" + "~" * 37 + "\n" in text
    assert not (tmp_path / "out").exists()  # nothing is run or written for a bad grid


def test_usage_errors_exit_2(tmp_path: Path):
    grid = str(DATA / "grid.yaml")
    assert main(["sweep", grid, "--workers", "-1", "-o", str(tmp_path)]) == 2
    assert main(["sweep", grid, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2


def test_reserved_figure_names_are_the_summary_s_top_level_keys():
    """SUMMARY_FIGURES reserves the summary's names; it must follow the summary when it grows."""
    from engine.policy.load import load_policy
    from engine.simulation.book import load_book
    from engine.simulation.scenario import load_scenario
    from engine.simulation.simulate import simulate

    result = simulate(
        load_policy("binance-usdm"),
        load_book(DATA / "book.jsonl"),
        load_scenario(DATA / "short-crash.yaml"),
    )
    summary = result.summary()
    assert set(SUMMARY_FIGURES) == set(summary) - {"policy", "title", "digest", "scenario"}
    figures = figures_of(summary)
    assert figures["insurance_fund.min"] == summary["insurance_fund"]["min"]
    assert figures["accounts_liquidated.total"] == summary["accounts_liquidated"]["total"]
    assert "title" not in figures and "digest" not in figures


def _doc_grids() -> list[tuple[str, str]]:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text(encoding="utf-8")
    return re.findall(r"```yaml\n# grid: ([^\n]*)\n(.*?)```", text, re.S)


def test_the_grids_in_docs_sweeps_md_load_and_the_first_is_the_shipped_example(tmp_path: Path):
    grids = _doc_grids()
    assert len(grids) == 3
    for index, (_, text) in enumerate(grids):
        load_grid(write(tmp_path, f"grid-{index}.yaml", text))
    example = Path(__file__).resolve().parents[2] / "examples" / "sweep-fund-vs-crash.yaml"
    assert grids[0][0] == "examples/sweep-fund-vs-crash.yaml"
    assert example.read_text(encoding="utf-8").split("\n", 1)[1] == grids[0][1]
    assert load_grid(example).size == 24

"""Sweeps end to end on a local Dask cluster: every cell is `liqpolicy simulate` on its files.

The grid (tests/sweep/data/grid.yaml) is 2 policies x 2 scenarios x 3 crash depths x 2
insurance-fund sizes = 24 cells on a 120-account book: a few seconds per run.  Cluster runs use
processes, free ports and no dashboard, so they work on a loaded machine and side by side.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.sweep import run_sweep
from engine.sweep.figures import figures_of
from engine.sweep.journal import JOURNAL
from engine.sweep.runner import SweepResult

DATA = Path(__file__).resolve().parent / "data"
GRID = DATA / "grid.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SweepResult]:
    base = tmp_path_factory.mktemp("sweeps")
    return {
        "two": run_sweep(GRID, base / "two", workers=2),
        "one": run_sweep(GRID, base / "one", workers=1),
        "here": run_sweep(GRID, base / "here", workers=0),
    }


def read(path: Path) -> bytes:
    return path.read_bytes()


def test_every_cell_runs_in_grid_order_and_the_figures_move_with_the_parameters(runs):
    result = runs["two"]
    rows = result.rows
    assert len(rows) == 24 and result.ran == 24 and result.resumed == 0
    assert [row["cell"] for row in rows] == list(range(24))
    assert all(row["status"] == "ok" for row in rows), [r["errors"] for r in rows]
    assert [
        (r["policy"], r["scenario"], r["parameters"]["crash_depth"], r["parameters"]["fund"])
        for r in rows[:4]
    ] == [
        ("binance-usdm", "short-crash.yaml", "0.5", "0"),
        ("binance-usdm", "short-crash.yaml", "0.5", "2000"),
        ("binance-usdm", "short-crash.yaml", "1", "0"),
        ("binance-usdm", "short-crash.yaml", "1", "2000"),
    ]
    by = {
        (r["policy"], r["scenario"], r["parameters"]["crash_depth"], r["parameters"]["fund"]): r
        for r in rows
    }
    # every pool starts with the fund value: binance-usdm has one pool per market (2 here)
    assert (
        by["binance-usdm", "short-crash.yaml", "1", "2000"]["figures"]["insurance_fund.start"]
        == "4000"
    )
    assert (
        by["huobi-linear-swap", "short-crash.yaml", "1", "2000"]["figures"]["insurance_fund.start"]
        == "2000"
    )
    assert (
        by["binance-usdm", "short-crash.yaml", "1", "0"]["figures"]["insurance_fund.start"] == "0"
    )
    # a deeper crash liquidates more accounts (the same book, the same rules)
    liquidated = [
        by["binance-usdm", "short-crash.yaml", d, "2000"]["figures"]["accounts_liquidated.total"]
        for d in ("0.5", "1", "1.5")
    ]
    assert liquidated[0] < liquidated[1] <= liquidated[2]
    # without a fund the losses past bankruptcy land elsewhere: on ADL counterparties (closed at
    # the bankruptcy price, so no bad debt while any is left), under both policies
    no_fund = by["binance-usdm", "short-crash.yaml", "1", "0"]["figures"]
    assert no_fund["adl_count"] > 0 and no_fund["bad_debt"] == "0"
    no_fund = by["huobi-linear-swap", "short-crash.yaml", "1", "0"]["figures"]
    assert no_fund["adl_count"] > 0 and no_fund["bad_debt"] == "0"
    assert rows[0]["scenario_file"] == "scenarios/short-crash-sweep-001.yaml"
    assert rows[0]["policy_file"] is None  # no policy parameter: the shipped policy itself


def test_outputs_are_byte_identical_whatever_the_number_of_workers(runs):
    for name in ("rows.jsonl", "rows.csv"):
        two = read(runs["two"].output_dir / name)
        assert two == read(runs["one"].output_dir / name) == read(runs["here"].output_dir / name)
    generated = sorted(
        p.relative_to(runs["two"].output_dir) for p in runs["two"].output_dir.rglob("*.yaml")
    )
    assert len(generated) == 12  # 2 scenarios x 3 depths x 2 funds
    for relative in generated:
        assert read(runs["two"].output_dir / relative) == read(runs["one"].output_dir / relative)


def test_every_cell_equals_liqpolicy_simulate_alone_on_its_generated_files(runs, tmp_path: Path):
    result = runs["two"]
    grid = result.grid
    scenarios = {s.reference: s.path for s in grid.scenarios}
    books = {b.reference: b.path for b in grid.books}
    for row in result.rows:
        policy = (
            str(result.output_dir / row["policy_file"]) if row["policy_file"] else row["policy"]
        )
        scenario = (
            result.output_dir / row["scenario_file"]
            if row["scenario_file"]
            else scenarios[row["scenario"]]
        )
        out = tmp_path / f"cell-{row['cell']}.json"
        code = main(
            [
                "simulate",
                policy,
                "-b",
                str(books[row["book"]]),
                "-s",
                str(scenario),
                "--format",
                "json",
                "-o",
                str(out),
            ]
        )
        assert code == 0
        alone = json.loads(out.read_text(encoding="utf-8"))
        assert alone["digest"] == row["policy_digest"]
        assert alone["policy"] == row["policy_id"] and alone["scenario"] == row["scenario_id"]
        for extra in ("insurance_fund_series", "insurance_fund_series_by_pool", "clawbacks"):
            alone.pop(extra)  # the JSON's series and lists; a row holds the summary's figures
        assert figures_of(alone) == row["figures"], row["cell"]


def test_csv_has_one_column_per_parameter_and_figure(runs):
    lines = (runs["two"].output_dir / "rows.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert header[:12] == [
        "cell",
        "status",
        "policy",
        "policy_id",
        "policy_digest",
        "policy_file",
        "scenario",
        "scenario_id",
        "scenario_file",
        "book",
        "crash_depth",
        "fund",
    ]
    assert header[-1] == "error" and "bad_debt" in header and "insurance_fund.min" in header
    assert len(lines) == 25
    first = dict(zip(header, lines[1].split(","), strict=True))
    row = runs["two"].rows[0]
    assert first["bad_debt"] == row["figures"]["bad_debt"] and first["error"] == ""


def test_parquet_holds_exact_decimals(runs):
    pyarrow = pytest.importorskip("pyarrow.parquet")
    result = runs["two"]
    table = pyarrow.read_table(result.output_dir / "rows.parquet")
    assert table.num_rows == 24
    values = table.column("insurance_fund.min").to_pylist()
    assert [str(v.normalize()) for v in values] == [
        str(__import__("decimal").Decimal(r["figures"]["insurance_fund.min"]).normalize())
        for r in result.rows
    ]


def small_grid(folder: Path, parameters: str) -> Path:
    path = folder / "grid.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            title: Small
            policies: [binance-usdm]
            scenarios: [{DATA / "short-crash.yaml"}]
            books: [{DATA / "book.jsonl"}]
            parameters:
            """
        )
        + textwrap.indent(textwrap.dedent(parameters), "  "),
        encoding="utf-8",
    )
    return path


def test_a_cell_whose_generated_policy_is_invalid_is_reported_and_the_sweep_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    grid = small_grid(
        tmp_path,
        """\
        - name: stages
          policy: waterfall.order
          values: [[insurance_fund, adl, write_off], [insurance_fund, adl]]
          labels: [complete, no_last_stage]
        """,
    )
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "-o", str(out), "--workers", "2"]) == 2
    captured = capsys.readouterr()
    rows = [
        json.loads(line) for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["status"] for r in rows] == ["ok", "error"]
    (error,) = rows[1]["errors"]
    assert error["code"] == "E414"
    generated = out / rows[1]["policy_file"]
    assert error["path"] == str(generated)
    assert (
        generated.read_text(encoding="utf-8").splitlines()[error["line"] - 1]
        == "  order: [insurance_fund, adl]"
    )
    assert "cell 1 (binance-usdm, " in captured.err and "no_last_stage) failed:" in captured.err
    assert f"{generated}:{error['line']}:{error['column']}: error[E414]" in captured.err
    assert "1 ok, 1 failed" in captured.out
    assert (out / "report.html").is_file()


def test_an_interrupted_sweep_resumes_from_the_journal(runs, tmp_path: Path):
    out = tmp_path / "out"
    seen: list[dict[str, Any]] = []

    def stop_after_five(row: dict[str, Any], done: int, total: int) -> None:
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(GRID, out, workers=0, on_row=stop_after_five)
    journal = out / JOURNAL
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 5
    # cell 0's line lost, and a line torn mid-write: cells finish in any order on a cluster
    journal.write_text("".join(lines[1:]) + '{"key": "sha256:torn", "row": {"cell"', "utf-8")
    resumed = run_sweep(GRID, out, workers=0)
    assert (resumed.resumed, resumed.ran) == (4, 20)
    assert read(out / "rows.jsonl") == read(runs["here"].output_dir / "rows.jsonl")
    assert read(out / "rows.csv") == read(runs["here"].output_dir / "rows.csv")
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 24  # torn line cut off
    again = run_sweep(GRID, out, workers=0)
    assert (again.resumed, again.ran) == (24, 0)
    assert run_sweep(GRID, out, workers=0, fresh=True).ran == 24


def test_cells_whose_content_changed_are_run_again(runs, tmp_path: Path):
    """A moved output directory still resumes; a changed value re-runs only its cells."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    grid = data / "grid.yaml"
    grid.write_text(
        grid.read_text(encoding="utf-8").replace("values: [0.5, 1, 1.5]", "values: [0.5, 1, 2]"),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    shutil.copytree(runs["here"].output_dir, out)
    result = run_sweep(grid, out, workers=0)
    assert (result.resumed, result.ran) == (16, 8)  # the 8 cells of depth 2 are new
    assert [r["parameters"]["crash_depth"] for r in result.rows[:6]] == [
        "0.5",
        "0.5",
        "1",
        "1",
        "2",
        "2",
    ]


def test_a_bug_in_a_cell_is_reported_with_exit_3_and_retried_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    grid = small_grid(
        tmp_path,
        """\
        - name: depth
          transform: crash_depth
          values: [1, 2]
        """,
    )
    out = tmp_path / "out"

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("engine.sweep.cells.simulate", broken)
    assert main(["sweep", str(grid), "-o", str(out), "--workers", "0"]) == 3
    rows = [
        json.loads(line) for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["status"] for r in rows] == ["internal_error", "internal_error"]
    assert "RuntimeError: boom" in rows[0]["errors"][0]["message"]
    assert not (out / JOURNAL).exists() or (out / JOURNAL).read_text(encoding="utf-8") == ""
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["sweep", str(grid), "-o", str(out), "--workers", "0"]) == 0
    assert "ran 2, resumed 0; 2 ok, 0 failed" in capsys.readouterr().out


def test_an_existing_cluster_runs_the_same_sweep(runs, tmp_path: Path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        result = run_sweep(GRID, tmp_path / "out", scheduler=cluster.scheduler_address)
    assert result.ran == 24
    assert read(tmp_path / "out" / "rows.jsonl") == read(runs["here"].output_dir / "rows.jsonl")


def test_an_unreachable_scheduler_is_an_input_error(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr("engine.sweep.execute.CONNECT_TIMEOUT", "1s")
    grid = small_grid(tmp_path, "- {name: depth, transform: crash_depth, values: [1]}\n")
    code = main(
        ["sweep", str(grid), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert code == 2
    assert (
        "error[E810]: cannot reach the Dask scheduler at tcp://127.0.0.1:9"
        in capsys.readouterr().err
    )


def test_the_html_report_is_self_contained_and_has_the_grid_s_charts(runs, tmp_path: Path, capsys):
    out = tmp_path / "out"
    shutil.copytree(runs["here"].output_dir, out)
    assert main(["sweep", str(GRID), "-o", str(out), "--workers", "0"]) == 0
    assert "ran 0, resumed 24; 24 ok, 0 failed" in capsys.readouterr().out
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert " src=" not in html and "<link" not in html
    # bad debt against crash depth: one chart per (scenario, fund), a line per policy ...
    assert html.count('<title id="chart-0-') == 4
    assert "bad_debt against crash_depth" in html
    # ... and heatmaps over crash depth and fund: one per (policy, scenario)
    assert html.count('<title id="chart-2-') == 4
    assert html.count("<tr") == (24 + 1) + (2 + 1)  # cells and parameters, each with a header


def test_to_pandas_keeps_figures_exact(runs):
    pytest.importorskip("pandas")
    from decimal import Decimal

    result = runs["here"]
    frame = result.to_pandas()
    assert list(frame.columns) == result.columns()
    assert frame["cell"].tolist() == list(range(24))
    assert frame["bad_debt"].tolist() == [Decimal(r["figures"]["bad_debt"]) for r in result.rows]
    assert frame["policy"].tolist()[0] == "binance-usdm"

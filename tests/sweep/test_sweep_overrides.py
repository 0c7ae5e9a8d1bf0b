"""A cell's inputs: generated `extends` children and scenario variants, checked by hand."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from engine.policy.load import load_policy
from engine.simulation.scenario import load_scenario, read_scenario
from engine.sweep import load_grid
from engine.sweep.plan import plan_sweep

DATA = Path(__file__).resolve().parent / "data"


def grid_file(folder: Path, parameters: str, *, policies: str = "[binance-usdm]") -> Path:
    text = textwrap.dedent(
        f"""\
        title: Overrides
        policies: {policies}
        scenarios: [{DATA / "short-crash.yaml"}]
        books: [{DATA / "book.jsonl"}]
        parameters:
        """
    ) + textwrap.indent(textwrap.dedent(parameters), "  ")
    path = folder / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def planned(folder: Path, parameters: str, **kwargs: str):
    """The plan of a grid, with its generated files written where the cells expect them."""
    plan = plan_sweep(load_grid(grid_file(folder, parameters, **kwargs)), folder / "out")
    for relative, text in plan.files.items():
        target = folder / "out" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return plan


def test_scaling_a_table_column_writes_a_child_that_loads_alone(tmp_path: Path):
    """binance-usdm's BTCUSDT brackets 1-3 have maintenance rates 0.4 %, 0.5 %, 0.65 % and
    maintenance amounts 0, 50, 950; scaled by 1.2 they are 0.48 %, 0.6 %, 0.78 % and 0, 60, 1140
    (each amount is a sum of min_notional x rate rises, so it scales with the rates and the
    child passes E426).  Nothing else changes: ETHUSDT's table, the markets."""
    plan = planned(
        tmp_path,
        """\
        - name: mmr
          operation: scale
          policy: tables.btcusdt_brackets.rows[*].{maintenance_margin_rate,maintenance_amount}
          values: [1.2]
        """,
    )
    (cell,) = plan.cells
    assert cell.identity["policy_file"] == "policies/binance-usdm-sweep-001.yaml"
    assert cell.identity["policy_id"] == "binance-usdm-sweep-001"
    child = load_policy(tmp_path / "out" / cell.identity["policy_file"])
    parent = load_policy("binance-usdm")
    rates = [row["maintenance_margin_rate"] for row in child.tables["btcusdt_brackets"].rows]
    assert rates[:3] == [Decimal("0.0048"), Decimal("0.006"), Decimal("0.0078")]
    old = parent.tables["btcusdt_brackets"].rows
    assert len(rates) == len(old)
    amounts = [r["maintenance_amount"] for r in child.tables["btcusdt_brackets"].rows]
    assert amounts[:3] == [Decimal("0"), Decimal("60"), Decimal("1140")]
    assert amounts == [r["maintenance_amount"] * Decimal("1.2") for r in old]
    assert list(child.tables["ethusdt_brackets"].rows) == list(
        parent.tables["ethusdt_brackets"].rows
    )
    assert child.data["markets"] == parent.data["markets"]
    assert child.extends == "binance-usdm" and child.digest != parent.digest
    assert child.title.endswith(
        "(what-if: tables.btcusdt_brackets.rows[*].{maintenance_margin_rate,maintenance_amount}"
        " x1.2)"
    )
    # the task carries the very texts of the child and its parent
    assert cell.task is not None
    assert [Path(path).name for path, _ in cell.task.policy] == [
        "binance-usdm-sweep-001.yaml",
        "binance-usdm.yaml",
    ]


def test_setting_one_market_parameter_and_a_parent_given_as_a_file(tmp_path: Path):
    """A parent named by a path outside the output folder may not be extended (E431): the
    generated child is written whole, the parent's data with the one value changed, and loads
    on its own."""
    own = tmp_path / "venue.yaml"
    own.write_text(
        Path(load_policy("binance-usdm").path).read_text(encoding="utf-8"), encoding="utf-8"
    )
    plan = planned(
        tmp_path,
        """\
        - name: fee
          policy: markets.BTCUSDT.parameters.clearance_fee_rate
          values: [0.004, 0.006]
        """,
        policies="[venue.yaml]",
    )
    first, second = plan.cells
    child = load_policy(tmp_path / "out" / second.identity["policy_file"])
    assert child.extends is None
    assert "extends" not in child.data and "include" not in child.data
    parent = load_policy(own)
    assert {n: list(t.rows) for n, t in child.tables.items()} == {
        n: list(t.rows) for n, t in parent.tables.items()
    }
    assert child.data["waterfall"] == parent.data["waterfall"]
    assert child.data["liquidation"] == parent.data["liquidation"]
    assert len(second.task.policy) == 1  # the child alone travels with the task
    assert child.markets["BTCUSDT"].parameters["clearance_fee_rate"] == Decimal("0.006")
    assert child.markets["ETHUSDT"].parameters["clearance_fee_rate"] == Decimal("0.005")
    assert first.identity["policy_file"] != second.identity["policy_file"]


def test_a_path_that_matches_nothing_fails_only_its_cells(tmp_path: Path):
    plan = planned(
        tmp_path,
        """\
        - name: fee
          policy: markets.*.parameters.clearance_fee_rat
          values: [0.004]
        """,
        policies="[binance-usdm, huobi-linear-swap]",
    )
    for cell in plan.cells:
        assert cell.task is None and cell.failure is not None
        (error,) = cell.failure.errors
        assert error["code"] == "E807"
        assert (error["line"], error["column"]) == (7, 13)
    assert plan.cells[0].failure.errors[0]["hint"] == "did you mean 'clearance_fee_rate'?"


def test_crash_depth_scales_each_keyframe_s_move_and_rounds_to_the_price_step(tmp_path: Path):
    """short-crash: BTC 60,000 → 56,400 → 52,800 → 55,000 (step 0.1). At depth 0.3333 the moves
    −3,600, −7,200, −5,000 become −1,199.88, −2,399.76, −1,666.5: marks 58,800.12 → 58,800.1,
    57,600.24 → 57,600.2, 58,333.5. ETH 2,400 → 2,250 → 2,100 → 2,190 (step 0.01): moves −150,
    −300, −210 become −49.995, −99.99, −69.993: 2,350.005 → 2,350.00 (half-even to the even cent), 2,300.01,
    2,330.007 → 2,330.01."""
    plan = planned(
        tmp_path,
        """\
        - name: depth
          transform: crash_depth
          values: [0.3333]
        """,
    )
    (cell,) = plan.cells
    scenario = load_scenario(tmp_path / "out" / cell.identity["scenario_file"])
    assert scenario.id == "short-crash-sweep-001"
    marks = {
        name: [p.mark_price for p in path.points if p.time in (0, 180, 360, 600)]
        for name, path in scenario.paths.items()
    }
    assert marks["BTC/USDT"] == [Decimal(v) for v in ("60000", "58800.1", "57600.2", "58333.5")]
    assert marks["ETH/USDT"] == [Decimal(v) for v in ("2400", "2350", "2300.01", "2330.01")]


def test_duration_stretches_every_time_onto_the_clock_and_book_depth_scales(tmp_path: Path):
    """Keyframes at 0, 3m, 6m, 10m on a 5-s clock: ×0.33 gives 59.4, 118.8, 198 s, rounded
    half-even to multiples of 5: 60, 120, 200 s (the path ends at 200 s: 41 points). The book
    depth ×0.5 halves BTC's average depth, 400,000 → 200,000."""
    plan = planned(
        tmp_path,
        """\
        - name: stretch
          transform: duration
          values: [0.33]
        - name: liquidity
          transform: book_depth
          values: [0.5]
        """,
    )
    (cell,) = plan.cells
    assert cell.task is not None
    path, text = cell.task.scenario
    scenario = read_scenario(text, path)
    btc = scenario.paths["BTC/USDT"]
    assert len(btc.points) == 41 and btc.points[-1].time == 200
    assert [p.mark_price for p in btc.points if p.time in (60, 120, 200)] == [
        Decimal("56400"),
        Decimal("52800"),
        Decimal("55000"),
    ]
    assert btc.points[0].average_book_depth == Decimal("200000")


def test_an_invalid_generated_scenario_is_located_in_its_own_file(tmp_path: Path):
    """A crash 10 times as deep sends BTC's 6-minute mark to 60,000 − 72,000 < 0."""
    plan = planned(
        tmp_path,
        """\
        - name: depth
          transform: crash_depth
          values: [10]
        """,
    )
    (cell,) = plan.cells
    assert cell.task is not None
    path, text = cell.task.scenario
    with pytest.raises(Exception) as raised:
        read_scenario(text, path)
    (first, *_) = raised.value.diagnostics  # type: ignore[attr-defined]
    assert first.span.path.endswith("scenarios/short-crash-sweep-001.yaml")
    assert (
        first.span.source.line(first.span.line).strip().startswith('- {time: "6m", mark: -12000,')
    )

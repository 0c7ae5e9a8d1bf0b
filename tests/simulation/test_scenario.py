"""Scenario files: keyframes interpolated exactly onto the clock, every mistake located, and the
shipped scenarios load with the documented step counts and headline moves."""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.simulation.model import PricePoint, Scenario
from engine.simulation.scenario import (
    MAX_POINTS,
    load_scenario,
    parse_time,
    scenarios_dir,
    shipped_scenario_paths,
    start_prices,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/scenario.schema.json"

BASE = """\
id: tiny
title: Tiny
description: Stylised test path.
sources:
  - {url: https://example.org, title: Example, retrieved: 2026-11-21}
step_seconds: 1
insurance_fund: {shared: 1000, X/USDT: 600}
instruments:
  X/USDT:
    price_step: 0.1
    average_book_depth: 1000
    keyframes:
      - {time: 0, mark: 100}
      - {time: 3, mark: 101, depth: 0.4}
    funding:
      - {time: 2, rate: -0.0001}
"""


def write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[tuple[str, int, int, str]]:
    """(code, line, column, message) of every diagnostic, in order."""
    with pytest.raises(PolicyError) as caught:
        load_text(tmp_path, text)
    return [
        (d.code, d.span.line if d.span else 0, d.span.column if d.span else 0, d.message)
        for d in caught.value.diagnostics
    ]


def marks(scenario: Scenario, instrument: str = "X/USDT") -> list[Decimal]:
    return [p.mark_price for p in scenario.paths[instrument].points]


# -- loading and interpolation -----------------------------------------------------------------


def test_minimal_scenario_loads_with_every_field(tmp_path):
    scenario = load_text(tmp_path, BASE)
    assert (scenario.id, scenario.title, scenario.step_seconds) == ("tiny", "Tiny", 1)
    assert scenario.insurance_fund == {"shared": Decimal(1000), "X/USDT": Decimal(600)}
    assert scenario.settlement_seconds is None
    assert scenario.sources == (
        {"url": "https://example.org", "title": "Example", "retrieved": "2026-11-21"},
    )
    assert scenario.path == str(tmp_path / "tiny.yaml")
    assert scenario.times() == [0, 1, 2, 3]
    path = scenario.paths["X/USDT"]
    assert path.instrument == "X/USDT"
    assert [(e.time, e.rate) for e in path.funding] == [(2, Decimal("-0.0001"))]


def test_marks_are_interpolated_linearly_and_rounded_to_the_price_step(tmp_path):
    # 100 + 1/3 and 100 + 2/3 round to 100.3 and 100.7 on a 0.1 grid
    assert marks(load_text(tmp_path, BASE)) == [
        Decimal("100.0"),
        Decimal("100.3"),
        Decimal("100.7"),
        Decimal("101.0"),
    ]


@pytest.mark.parametrize(
    ("start", "end", "middle"),
    [
        ("100.0", "100.1", "100.0"),  # 100.05: a tie, rounded to the even 100.0
        ("100.1", "100.2", "100.2"),  # 100.15: a tie, rounded to the even 100.2
        ("99.9", "100.0", "100.0"),  # 99.95 -> 100.0
    ],
)
def test_an_exact_halfway_value_rounds_half_even(tmp_path, start, end, middle):
    text = BASE.replace("{time: 0, mark: 100}", f"{{time: 0, mark: {start}}}").replace(
        "{time: 3, mark: 101, depth: 0.4}", f"{{time: 2, mark: {end}}}"
    )
    assert marks(load_text(tmp_path, text))[1] == Decimal(middle)


def test_every_value_is_an_exact_decimal_on_its_grid(tmp_path):
    scenario = load_text(
        tmp_path, BASE.replace("mark: 101,", "mark: 101, last_bps: -37, index_bps: 13,")
    )
    for point in scenario.paths["X/USDT"].points:
        for value in (
            point.mark_price,
            point.last_price,
            point.index_price,
            point.book_depth,
            point.average_book_depth,
        ):
            assert type(value) is Decimal
        for price in (point.mark_price, point.last_price, point.index_price):
            assert price % Decimal("0.1") == 0


def test_offsets_and_depth_are_interpolated_between_keyframes(tmp_path):
    text = BASE.replace(
        "{time: 3, mark: 101, depth: 0.4}",
        "{time: 2, mark: 100, last_bps: -100, index_bps: 40, depth: 0.5}",
    )
    text = text.replace("{time: 2, rate: -0.0001}", "{time: 1, rate: 0.0002}")
    points = load_text(tmp_path, text).paths["X/USDT"].points
    assert points[0] == PricePoint(
        0, Decimal(100), Decimal(100), Decimal(100), Decimal(1000), Decimal(1000)
    )
    # halfway: -50 bps and +20 bps of the mark, depth ratio 0.75
    assert (points[1].last_price, points[1].index_price) == (Decimal("99.5"), Decimal("100.2"))
    assert points[1].book_depth == Decimal(750)
    assert (points[2].last_price, points[2].index_price) == (Decimal(99), Decimal("100.4"))
    assert points[2].book_depth == Decimal(500)


def test_without_average_depth_points_carry_no_depth(tmp_path):
    text = BASE.replace("    average_book_depth: 1000\n", "").replace(", depth: 0.4", "")
    point = load_text(tmp_path, text).paths["X/USDT"].points[1]
    assert (point.book_depth, point.average_book_depth) == (None, None)
    assert "book_depth" not in point.market_data(None)


def test_depth_step_rounds_book_depth(tmp_path):
    text = BASE.replace(
        "    average_book_depth: 1000\n", "    average_book_depth: 1000\n    depth_step: 100\n"
    )
    assert [p.book_depth for p in load_text(tmp_path, text).paths["X/USDT"].points] == [
        Decimal(1000),
        Decimal(800),
        Decimal(600),
        Decimal(400),
    ]


def test_durations_and_coarser_steps(tmp_path):
    text = (
        BASE.replace("step_seconds: 1", "step_seconds: 60")
        .replace("{time: 3, mark: 101, depth: 0.4}", "{time: 1h30m, mark: 109}")
        .replace("{time: 2, rate: -0.0001}", "{time: 1h, rate: 0.0001}")
    )
    scenario = load_text(tmp_path, text)
    assert scenario.times() == list(range(0, 5401, 60))
    assert marks(scenario)[45] == Decimal("104.5")
    assert scenario.paths["X/USDT"].funding[0].time == 3600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("13m", 780),
        ("1h30m", 5400),
        ("3d", 259_200),
        ("1d2h3m4s", 93_784),
    ],
)
def test_parse_time_reads_durations(text, seconds):
    assert parse_time(text) == seconds
    assert parse_time(Decimal(seconds)) == seconds


def test_several_instruments_share_one_clock(tmp_path):
    text = BASE.replace(
        "insurance_fund: {shared: 1000, X/USDT: 600}",
        "insurance_fund: {shared: 1000, X/USDT: 600, Y/USDT: 400}",
    )
    text += textwrap.indent(
        textwrap.dedent("""\
        Y/USDT:
          price_step: 0.01
          keyframes:
            - {time: 0, mark: 2}
            - {time: 3, mark: 1.97}
    """),
        "  ",
    )
    scenario = load_text(tmp_path, text)
    assert list(scenario.paths) == ["X/USDT", "Y/USDT"]
    assert marks(scenario, "Y/USDT") == [
        Decimal("2.00"),
        Decimal("1.99"),
        Decimal("1.98"),
        Decimal("1.97"),
    ]
    assert start_prices(scenario) == {"X/USDT": Decimal(100), "Y/USDT": Decimal(2)}


def test_settlement_period(tmp_path):
    text = BASE.replace("step_seconds: 1\n", "step_seconds: 1\nsettlement_seconds: 3\n")
    assert load_text(tmp_path, text).settlement_seconds == 3


# -- every mistake is located ------------------------------------------------------------------

# Lines of BASE: 6 step_seconds, 7 insurance_fund, 9 X/USDT, 12 keyframes, 13-14 the two
# keyframes, 16 the funding event.


@pytest.mark.parametrize(
    ("old", "new", "code", "line", "words"),
    [
        ("{time: 0, mark: 100}", "{time: 1, mark: 100}", "E701", 13, "paths start at 0"),
        (
            "{time: 3, mark: 101, depth: 0.4}",
            "{time: 0, mark: 101}",
            "E701",
            14,
            "not after the previous keyframe",
        ),
        ("step_seconds: 1", "step_seconds: 2", "E702", 14, "not on the 2-second clock"),
        (
            "{time: 2, rate: -0.0001}",
            "{time: 4, rate: -0.0001}",
            "E704",
            16,
            "after the end of the path",
        ),
        ("    average_book_depth: 1000\n", "", "E705", 13, "has no average_book_depth"),
        ("      - {time: 3, mark: 101, depth: 0.4}\n", "", "E706", 12, "at least 2 keyframes"),
        (
            "{shared: 1000, X/USDT: 600}",
            "{shared: 1000, X/USTD: 600}",
            "E707",
            7,
            "neither `shared` nor an instrument",
        ),
        ("mark: 101, depth", "mark: 101, last_bps: -9999.9, depth", "E708", 13, "rounds to 0"),
        (
            "{time: 3, mark: 101,",
            "{time: 3, mark: 101.05,",
            "E709",
            14,
            "not a multiple of price_step 0.1",
        ),
        ("{time: 3, mark: 101,", "{time: 24d, mark: 101,", "E710", 14, "the limit is"),
        (
            "step_seconds: 1\n",
            "step_seconds: 1\nsettlement_seconds: 4\n",
            "E711",
            7,
            "longer than the path",
        ),
        ("  X/USDT:\n", "  XUSDT:\n", "E712", 9, "is not BASE/QUOTE"),
    ],
)
def test_each_semantic_mistake_is_located(  # one argument per parameter
    tmp_path, old, new, code, line, words
):
    assert old in BASE
    found = problems(tmp_path, BASE.replace(old, new))
    matching = [p for p in found if p[0] == code]
    assert matching, found
    assert matching[0][1] == line, found
    assert words in matching[0][3]


def test_the_point_limit_is_large_enough_for_a_day_of_seconds():
    assert MAX_POINTS >= 2 * 86_401


@pytest.mark.parametrize(
    ("old", "new", "code", "line", "words"),
    [
        ("title: Tiny\n", "", "E101", 1, "missing required key 'title'"),
        ("step_seconds: 1", "step_secs: 1", "E102", 6, "unknown key 'step_secs'"),
        ("{time: 0, mark: 100}", "{time: 0, mark: -100}", "E104", 13, "out of range"),
        ("{time: 0, mark: 100}", "{time: 0, mark: '100'}", "E103", 13, "expected a number"),
        ("{time: 3, mark: 101,", "{time: 3 minutes, mark: 101,", "E104", 14, "not a valid value"),
        ("retrieved: 2026-11-21", "retrieved: 21.11.2026", "E104", 5, "not a valid value"),
        ("id: tiny", "id: Tiny Scenario", "E104", 1, "not a valid value"),
    ],
)
def test_schema_mistakes_are_located(  # one argument per parameter
    tmp_path, old, new, code, line, words
):
    found = problems(tmp_path, BASE.replace(old, new))
    matching = [p for p in found if p[0] == code]
    assert matching and matching[0][1] == line, found
    assert words in matching[0][3]


def test_every_mistake_is_reported_at_once(tmp_path):
    text = (
        BASE.replace("{time: 0, mark: 100}", "{time: 1, mark: 100}")
        .replace("mark: 101,", "mark: 101.05,")
        .replace("X/USDT: 600}", "Z/USDT: 600}")
    )
    assert [p[0] for p in problems(tmp_path, text)] == ["E707", "E701", "E709"]


def test_instruments_must_end_together(tmp_path):
    text = BASE + textwrap.indent(
        textwrap.dedent("""\
        Y/USDT:
          price_step: 1
          keyframes:
            - {time: 0, mark: 5}
            - {time: 2, mark: 6}
    """),
        "  ",
    )
    found = problems(tmp_path, text)
    assert [(code, line) for code, line, _, _ in found] == [("E703", 21)]
    assert "ends at 2 s but the path of X/USDT ends at 3 s" in found[0][3]


def test_funding_events_in_time_order(tmp_path):
    text = BASE.replace(
        "      - {time: 2, rate: -0.0001}\n",
        "      - {time: 2, rate: -0.0001}\n      - {time: 1, rate: 0.0001}\n",
    )
    assert [(code, line) for code, line, _, _ in problems(tmp_path, text)] == [("E704", 17)]


def test_yaml_errors_come_from_the_reader(tmp_path):
    assert problems(tmp_path, BASE + "oops: [\n")[0][0] == "E010"


def test_unknown_shipped_id_suggests_close_ones():
    with pytest.raises(PolicyError) as caught:
        load_scenario("flash-crash")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E001"
    assert "no such file or shipped scenario 'flash-crash'" in diagnostic.message
    assert diagnostic.hint and "flash-crash-2025-10-10" in diagnostic.hint


def test_missing_file_is_e001(tmp_path):
    with pytest.raises(PolicyError) as caught:
        load_scenario(tmp_path / "absent.yaml")
    assert caught.value.diagnostics[0].code == "E001"


# -- the shipped scenarios ---------------------------------------------------------------------


def test_shipped_scenarios_are_the_packaged_ones():
    assert scenarios_dir().resolve() == (ROOT / "scenarios").resolve()
    assert [p.name for p in shipped_scenario_paths()] == [p.name for p in SHIPPED]
    assert {p.stem for p in SHIPPED} >= {
        "flash-crash-2025-10-10",
        "crash-2021-05-19",
        "slow-grind-down",
        "short-squeeze",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_by_id_and_path(path):
    by_id = load_scenario(path.stem)
    assert by_id.id == path.stem, "a shipped scenario's id is its file name"
    assert by_id.paths == load_scenario(path).paths
    assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_is_stylised_and_cited(path):
    scenario = load_scenario(path)
    assert re.search(r"\bstylised\b", scenario.description, re.I)
    assert len(scenario.sources) >= 2
    for source in scenario.sources:
        assert source["url"].startswith("https://")
        assert source["retrieved"] == "2026-11-21"
        assert source.get("note")
    funds = scenario.insurance_fund
    coins = {k for k in funds if k.startswith("shared:")}  # coin-margined pools, in the coin
    assert set(funds) - coins == {"shared", *scenario.paths}
    in_quote = [k for k in scenario.paths if not k.endswith("/USD")]  # BTC/USD: coin-margined
    assert funds["shared"] == sum(funds[k] for k in in_quote)  # the pooled fund is the sum


@pytest.mark.parametrize(
    ("scenario_id", "step", "points", "funding"),
    [
        # 24 minutes at 1 s: 1,441 points, t = 0, 1, ..., 1,440 (1,440 steps)
        ("flash-crash-2025-10-10", 1, 1441, 0),
        # one day at 1 minute: 1,441 points, t = 0, 60, ..., 86,400
        ("crash-2021-05-19", 60, 1441, 3),
        # three days at 1 hour: 73 points, t = 0, 3,600, ..., 259,200; funding every 8 hours
        ("slow-grind-down", 3600, 73, 9),
        # one day at 1 minute
        ("short-squeeze", 60, 1441, 3),
    ],
)
def test_shipped_step_counts(scenario_id, step, points, funding):
    scenario = load_scenario(scenario_id)
    assert scenario.step_seconds == step
    assert scenario.times() == list(range(0, (points - 1) * step + 1, step))
    for path in scenario.paths.values():
        assert len(path.points) == points
        assert len(path.funding) == funding


def _move(scenario: Scenario, instrument: str, pick) -> tuple[int, Decimal]:
    points = scenario.paths[instrument].points
    chosen = pick(points, key=lambda p: p.mark_price)
    return chosen.time, (chosen.mark_price / points[0].mark_price - 1) * 100


def test_flash_crash_headline_move():
    scenario = load_scenario("flash-crash-2025-10-10")
    time, move = _move(scenario, "BTC/USDT", min)
    assert time <= 13 * 60
    assert Decimal("-14.0") <= move <= Decimal("-13.0")
    points = scenario.paths["BTC/USDT"].points
    bottom = points[time]
    assert bottom.last_price < bottom.mark_price < bottom.index_price  # last overshoots
    assert bottom.book_depth == bottom.average_book_depth * Decimal("0.2")
    assert bottom.mark_price < points[-1].mark_price < points[0].mark_price  # partial recovery
    eth_time, eth_move = _move(scenario, "ETH/USDT", min)
    assert eth_time <= 13 * 60 and eth_move < Decimal(-13)
    assert start_prices(scenario) == {"BTC/USDT": Decimal(122000), "ETH/USDT": Decimal(4380)}


def test_2021_crash_headline_move():
    scenario = load_scenario("crash-2021-05-19")
    points = scenario.paths["BTC/USDT"].points
    _, move = _move(scenario, "BTC/USDT", min)
    assert points[0].mark_price == 43000
    assert Decimal(-31) <= move <= Decimal(-29)
    assert Decimal(37000) <= points[-1].mark_price <= Decimal(40000)
    _, eth_move = _move(scenario, "ETH/USDT", min)
    assert Decimal(-46) <= eth_move <= Decimal(-30)


def test_slow_grind_headline_move_and_funding():
    scenario = load_scenario("slow-grind-down")
    for instrument, path in scenario.paths.items():
        assert path.points[-1].mark_price / path.points[0].mark_price == Decimal("0.8"), instrument
        assert [e.time for e in path.funding] == list(range(8 * 3600, 72 * 3600 + 1, 8 * 3600))
        rates = [e.rate for e in path.funding]
        assert sum(1 for r in rates if r < 0) >= 7 and max(abs(r) for r in rates) < Decimal("0.001")


def test_short_squeeze_headline_move_and_funding():
    scenario = load_scenario("short-squeeze")
    for instrument, path in scenario.paths.items():
        time, move = _move(scenario, instrument, max)
        assert time <= 6 * 3600 and Decimal("24.5") <= move <= Decimal("25.5"), instrument
        rates = [e.rate for e in path.funding]
        assert rates[0] < 0 < max(rates) and max(rates) >= Decimal("0.001")


def test_docs_scenario_example_loads(tmp_path):
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(# scenario.*?)^```", text, re.M | re.S)
    assert blocks, "docs/scenarios.md shows a complete scenario"
    for block in blocks:
        assert load_scenario(write(tmp_path, block, "example.yaml")).paths

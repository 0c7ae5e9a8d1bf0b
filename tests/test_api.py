"""The Python API (`engine.api`, re-exported from `engine`) and its guide, docs/api.md."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import threading
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import engine
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "binance-usdm"

ALICE: dict[str, Any] = json.loads((ROOT / "examples" / "alice.json").read_text("utf-8"))


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load_policy(SHIPPED)


def account(**changes: object) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(ALICE)
    position = data["positions"][0]
    for key, value in changes.items():
        if key in position:
            position[key] = value
        else:
            data[key] = value
    return data


# -- docs/api.md runs as a test ----------------------------------------------------------------


def test_api_guide_examples_run() -> None:
    results = doctest.testfile(
        str(ROOT / "docs" / "api.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert results.attempted > 40
    assert results.failed == 0


# -- load_policy, check_policy, shipped_policies -------------------------------------------------


def test_load_policy_by_id_and_by_path_give_the_same_policy() -> None:
    by_id = engine.load_policy(SHIPPED)
    by_path = engine.load_policy(ROOT / "policies" / "binance-usdm.yaml")
    assert isinstance(by_id, engine.Policy)
    assert (by_id.id, by_id.digest) == (by_path.id, by_path.digest)


def test_unknown_policy_id_raises_policy_error_with_diagnostics() -> None:
    with pytest.raises(engine.PolicyError) as caught:
        engine.load_policy("binance-usdn")
    assert isinstance(caught.value, ValueError)
    assert [(d.code, d.path) for d in caught.value.diagnostics] == [("E001", "binance-usdn")]


def test_invalid_policy_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntitel: Bad\n", encoding="utf-8")
    with pytest.raises(engine.PolicyError) as caught:
        engine.load_policy(bad)
    codes = {d.code for d in caught.value.diagnostics}
    assert {"E101", "E102"} <= codes
    loaded, diagnostics = engine.check_policy(bad)
    assert loaded is None
    assert {d.code for d in diagnostics} == codes


def test_check_policy_returns_the_policy_and_its_warnings() -> None:
    loaded, diagnostics = engine.check_policy(SHIPPED)
    assert loaded is not None and loaded.id == SHIPPED
    assert all(d.severity == "warning" for d in diagnostics)


def test_shipped_policies_are_sorted_ids_that_load() -> None:
    ids = engine.shipped_policies()
    assert SHIPPED in ids
    assert ids == sorted(ids)
    for policy_id in ids:
        assert engine.load_policy(policy_id).id == policy_id


# -- evaluate ------------------------------------------------------------------------------------


def test_evaluate_accepts_a_dict_an_account_a_path_or_an_id(policy: engine.Policy) -> None:
    expected = engine.evaluate(policy, ALICE).as_dict()
    parsed = engine.parse_account(ALICE, policy)
    assert isinstance(parsed, engine.Account)
    assert engine.evaluate(policy, parsed).as_dict() == expected
    assert engine.evaluate(SHIPPED, ALICE).as_dict() == expected
    assert engine.evaluate(ROOT / "policies" / "binance-usdm.yaml", ALICE).as_dict() == expected
    assert engine.evaluate(policy, MappingProxyType(ALICE)).as_dict() == expected


def test_evaluate_returns_exact_results(policy: engine.Policy) -> None:
    result = engine.evaluate(policy, ALICE)
    assert isinstance(result, engine.AccountResult)
    position = result.positions[0]
    assert isinstance(position, engine.PositionResult)
    assert position.liquidation_price == Decimal("54246.2")
    assert position.figure("notional") == Decimal("118000")
    assert result.trace == ()
    assert engine.evaluate(policy, ALICE, trace=True).trace


def test_evaluate_accepts_decimals_and_ints(policy: engine.Policy) -> None:
    mixed = account(size=2, entry_price=Decimal("60000"), wallet_balance=10000)
    assert engine.evaluate(policy, mixed).as_dict() == engine.evaluate(policy, ALICE).as_dict()


def test_evaluate_keeps_decimals_exact(policy: engine.Policy) -> None:
    data = account(size="3")
    data["market"]["BTCUSDT"]["mark_price"] = Decimal("0.1")
    position = engine.evaluate(policy, data).positions[0]
    assert position.figure("notional") == Decimal("0.3")  # in floats: 0.30000000000000004


def test_evaluate_gives_the_same_answer_as_the_cli(
    policy: engine.Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", SHIPPED, "examples/alice.json", "--format", "json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    with open(ROOT / "examples" / "alice.json", encoding="utf-8") as handle:
        data = json.load(handle, parse_float=Decimal)
    from_api = json.loads(engine.to_json(engine.evaluate(policy, data, trace=True)))
    assert from_api == from_cli


def test_evaluate_refuses_floats(policy: engine.Policy) -> None:
    with pytest.raises(engine.InputError) as caught:
        engine.evaluate(policy, account(size=2.0, wallet_balance=1.5))
    assert [d.code for d in caught.value.diagnostics] == ["E601", "E601"]
    assert "positions[0].size" in str(caught.value)


def test_evaluate_reports_unknown_symbols_and_schema_errors(policy: engine.Policy) -> None:
    with pytest.raises(engine.InputError) as caught:
        engine.evaluate(policy, account(symbol="BTCUSDX"))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E602"
    assert diagnostic.hint == "did you mean 'BTCUSDT' or 'BTCSTUSDT' or 'LTCUSDT'?"
    missing = account()
    del missing["wallet_balance"]
    with pytest.raises(engine.InputError) as caught:
        engine.evaluate(policy, missing)
    assert [d.code for d in caught.value.diagnostics] == ["E101"]


def test_evaluation_errors_are_located_in_the_policy(policy: engine.Policy) -> None:
    with pytest.raises(engine.EvaluationError) as caught:
        engine.evaluate(policy, account(size="1e50"))
    diagnostic = caught.value.diagnostic()
    assert diagnostic.code == "E504"
    assert diagnostic.span is not None and diagnostic.span.path.endswith("binance-usdm.yaml")


def test_evaluate_rejects_a_policy_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="policy must be"):
        engine.evaluate(42, ALICE)  # type: ignore[arg-type]


# -- liquidation_price ---------------------------------------------------------------------------


def test_liquidation_price_matches_the_cli(
    policy: engine.Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    quote = engine.liquidation_price(
        policy, symbol="BTCUSDT", side="long", size="2", entry_price=60000, leverage=Decimal(10)
    )
    assert isinstance(quote, engine.PriceQuote)
    assert quote.liquidation_price == Decimal("54246.2")
    assert quote.bankruptcy_price == Decimal("54000")
    argv = [
        "liq-price",
        SHIPPED,
        "--symbol",
        "BTCUSDT",
        "--side",
        "long",
        "--size",
        "2",
        "--entry",
        "60000",
        "--leverage",
        "10",
        "--format",
        "json",
    ]
    assert main(argv) == 0
    from_cli = json.loads(capsys.readouterr().out)
    assert {"policy": SHIPPED, **json.loads(engine.to_json(quote))} == from_cli


def test_liquidation_price_in_cross_mode_with_a_mark(policy: engine.Policy) -> None:
    quote = engine.liquidation_price(
        policy,
        symbol="BTCUSDT",
        side="short",
        size="1",
        entry_price="60000",
        margin="6000",
        mode="cross",
        wallet="6000",
        mark_price="61000",
    )
    assert quote.margin_mode == "cross"
    assert quote.liquidation_price is not None and quote.liquidation_price > Decimal("60000")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"size": 2.0}, "E601"),
        ({"leverage": 10.0}, "E601"),
        ({"size": True}, "E103"),
        ({"entry_price": [60000]}, "E103"),
        ({"size": "two"}, "E015"),
        ({"size": Decimal("NaN")}, "E015"),
        ({"entry_price": "1e999"}, "E015"),
        ({"symbol": "BTCUSDX"}, "E602"),
        ({"side": "sideways"}, "E104"),
        ({"leverage": None}, "E606"),
        ({"mode": "cross", "leverage": "10"}, "E606"),
    ],
)
def test_liquidation_price_input_errors(
    policy: engine.Policy, changes: dict[str, object], code: str
) -> None:
    arguments: dict[str, object] = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": "2",
        "entry_price": "60000",
        "leverage": "10",
        **changes,
    }
    with pytest.raises(engine.InputError) as caught:
        engine.liquidation_price(policy, **arguments)  # type: ignore[arg-type]
    assert code in [d.code for d in caught.value.diagnostics]


# -- run_examples --------------------------------------------------------------------------------


def test_run_examples_passes_for_every_shipped_policy() -> None:
    for policy_id in engine.shipped_policies():
        results = engine.run_examples(policy_id)
        assert results, policy_id
        assert all(isinstance(r, engine.ExampleResult) for r in results)
        failed = [r.as_dict() for r in results if not r.passed]
        assert failed == [], policy_id


# -- to_json and error_as_dict -------------------------------------------------------------------


def test_to_json_writes_decimals_as_exact_text(policy: engine.Policy) -> None:
    assert engine.to_json({"a": Decimal("0.1") + Decimal("0.2")}) == '{"a":"0.3"}'
    assert engine.to_json([Decimal("1E+3"), (Decimal("-0.50"),)]) == '["1000",["-0.5"]]'
    assert engine.to_json(MappingProxyType({"b": True})) == '{"b":true}'
    result = engine.evaluate(policy, ALICE)
    assert json.loads(engine.to_json(result)) == json.loads(json.dumps(result.as_dict()))
    assert "\n" not in engine.to_json(result)
    assert engine.to_json({"x": 1}, indent=2) == '{\n  "x": 1\n}'


def test_to_json_of_diagnostics_and_errors(policy: engine.Policy) -> None:
    with pytest.raises(engine.InputError) as caught:
        engine.evaluate(policy, account(symbol="BTCUSDX"))
    error = json.loads(engine.to_json(caught.value))
    assert error == engine.error_as_dict(caught.value)
    assert error["type"] == "InputError"
    assert error["diagnostics"] == [caught.value.diagnostics[0].as_dict()]
    assert json.loads(engine.to_json(caught.value.diagnostics[0]))["code"] == "E602"


def test_to_json_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="object cannot be written as JSON"):
        engine.to_json(object())


def test_error_as_dict_summarises_several_problems(policy: engine.Policy) -> None:
    with pytest.raises(engine.InputError) as caught:
        engine.evaluate(policy, account(size=2.0, wallet_balance=1.5))
    problem = engine.error_as_dict(caught.value)
    assert problem["message"].endswith("(and 1 more)")
    assert len(problem["diagnostics"]) == 2


def test_error_as_dict_of_an_evaluation_error(policy: engine.Policy) -> None:
    with pytest.raises(engine.EvaluationError) as caught:
        engine.evaluate(policy, account(size="1e50"))
    problem = engine.error_as_dict(caught.value)
    assert problem["type"] == "EvaluationError"
    assert problem["message"] == str(caught.value)
    assert [d["code"] for d in problem["diagnostics"]] == ["E504"]


# -- immutability and threads --------------------------------------------------------------------


def test_a_loaded_policy_is_immutable(policy: engine.Policy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.id = "other"  # type: ignore[misc]
    for mapping in (
        policy.markets,
        policy.tables,
        policy.definitions,
        policy.expressions,
        policy.data,
    ):
        assert isinstance(mapping, MappingProxyType)
        with pytest.raises(TypeError):
            mapping["new"] = None  # type: ignore[index]
    market = policy.markets["BTCUSDT"]
    assert isinstance(market.record, MappingProxyType)
    assert isinstance(market.parameters, MappingProxyType)


def test_evaluation_leaves_the_policy_and_the_account_unchanged(policy: engine.Policy) -> None:
    erin = engine.read_account_file(ROOT / "examples" / "erin-crash.yaml", policy)
    before = (engine.to_json(erin), policy.digest, dict(policy.markets["BTCUSDT"].record))
    first = engine.evaluate(policy, erin).as_dict()
    assert first["liquidations"]  # the liquidation ran on a working copy
    assert (engine.to_json(erin), policy.digest, dict(policy.markets["BTCUSDT"].record)) == before
    assert engine.evaluate(policy, erin).as_dict() == first


def test_one_policy_evaluated_from_eight_threads_gives_identical_results(
    policy: engine.Policy,
) -> None:
    erin = engine.read_account_file(ROOT / "examples" / "erin-crash.yaml", policy)
    cases: list[tuple[engine.Account | dict[str, Any], bool]] = [
        (ALICE, False),
        (erin, False),
        (ALICE, True),
        (erin, True),
        (account(size="0.5", isolated_margin="1000"), False),
    ]
    expected = [engine.evaluate(policy, data, trace=trace).as_dict() for data, trace in cases]
    threads = 8
    rounds = 5
    barrier = threading.Barrier(threads)
    answers: dict[int, list[dict[str, Any]]] = {}
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            got = []
            for _ in range(rounds):
                # Each thread walks the cases in a different order to interleave differently.
                for offset in range(len(cases)):
                    case = (index + offset) % len(cases)
                    data, trace = cases[case]
                    got.append((case, engine.evaluate(policy, data, trace=trace).as_dict()))
            answers[index] = [answer for _, answer in sorted(got, key=lambda item: item[0])]
        except BaseException as error:  # reported below, in the main thread
            failures.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert failures == []
    assert sorted(answers) == list(range(threads))
    want = [answer for answer in expected for _ in range(rounds)]
    for index in range(threads):
        assert answers[index] == want, f"thread {index} differs"


def test_the_api_prints_nothing(policy: engine.Policy, capsys: pytest.CaptureFixture[str]) -> None:
    engine.evaluate(policy, ALICE, trace=True)
    engine.liquidation_price(
        policy, symbol="BTCUSDT", side="long", size="2", entry_price="60000", leverage="10"
    )
    engine.run_examples(policy)
    assert capsys.readouterr() == ("", "")  # library code never prints; only engine.cli does

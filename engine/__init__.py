"""liqpolicy: exchange liquidation rules as data, run by one exact-decimal engine.

The public Python API (guide: ``docs/api.md``)::

    import engine

    policy = engine.load_policy("my-venue.yaml")     # a path, or a shipped policy id
    result = engine.evaluate(policy, account_dict)   # -> AccountResult
    quote = engine.liquidation_price(policy, symbol="BTCUSDT", side="long",
                                     size="2", entry_price="60000", leverage="10")
    engine.to_json(result)                           # the documented JSON, decimals as text
    run = engine.compare(["venue-a.yaml", "venue-b.yaml"], "demo",
                         "flash-crash-2025-10-10")  # -> Comparison (simulate: one policy)

Everything listed in ``__all__`` is stable API; other modules are internal.  Errors are
:class:`EngineError` subclasses carrying :class:`Diagnostic` objects (``engine.errors``); an
:class:`InternalError` means liqpolicy itself is wrong.
"""

from engine._version import __version__ as __version__
from engine.api import check_policy as check_policy
from engine.api import compare as compare
from engine.api import error_as_dict as error_as_dict
from engine.api import evaluate as evaluate
from engine.api import liquidation_price as liquidation_price
from engine.api import load_policy as load_policy
from engine.api import run_examples as run_examples
from engine.api import shipped_policies as shipped_policies
from engine.api import simulate as simulate
from engine.api import to_json as to_json
from engine.api import to_pandas as to_pandas
from engine.dsl import check_expression as check_expression
from engine.dsl import compile_expression as compile_expression
from engine.dsl import parse_expression as parse_expression
from engine.dsl import print_expression as print_expression
from engine.dsl.check import Scope as Scope
from engine.errors import ConservationError as ConservationError
from engine.errors import DiagnosticError as DiagnosticError
from engine.errors import EngineError as EngineError
from engine.errors import EvaluationError as EvaluationError
from engine.errors import ExpressionError as ExpressionError
from engine.errors import InputError as InputError
from engine.errors import InternalError as InternalError
from engine.errors import PolicyError as PolicyError
from engine.mechanics.accounts import Account as Account
from engine.mechanics.accounts import parse_account as parse_account
from engine.mechanics.accounts import read_account_file as read_account_file
from engine.mechanics.evaluate import AccountResult as AccountResult
from engine.mechanics.evaluate import PositionResult as PositionResult
from engine.mechanics.examples import ExampleResult as ExampleResult
from engine.mechanics.quote import PriceQuote as PriceQuote
from engine.mechanics.statement import Statement as Statement
from engine.policy.model import Policy as Policy
from engine.simulation.book import load_book as load_book
from engine.simulation.compare import Comparison as Comparison
from engine.simulation.generate import generate_book as generate_book
from engine.simulation.model import Book as Book
from engine.simulation.model import Scenario as Scenario
from engine.simulation.results import SimulationResult as SimulationResult
from engine.simulation.scenario import load_scenario as load_scenario
from engine.source import Diagnostic as Diagnostic
from engine.sweep import Grid as Grid
from engine.sweep import SweepResult as SweepResult
from engine.sweep import load_grid as load_grid
from engine.sweep import run_sweep as run_sweep

__all__ = [
    "Account",
    "AccountResult",
    "Book",
    "Comparison",
    "ConservationError",
    "Diagnostic",
    "DiagnosticError",
    "EngineError",
    "EvaluationError",
    "ExampleResult",
    "ExpressionError",
    "Grid",
    "InputError",
    "InternalError",
    "Policy",
    "PolicyError",
    "PositionResult",
    "PriceQuote",
    "Scenario",
    "Scope",
    "SimulationResult",
    "Statement",
    "SweepResult",
    "__version__",
    "check_expression",
    "check_policy",
    "compare",
    "compile_expression",
    "error_as_dict",
    "evaluate",
    "generate_book",
    "liquidation_price",
    "load_book",
    "load_grid",
    "load_policy",
    "load_scenario",
    "parse_account",
    "parse_expression",
    "print_expression",
    "read_account_file",
    "run_examples",
    "run_sweep",
    "shipped_policies",
    "simulate",
    "to_json",
    "to_pandas",
]

"""One cell's task and the function a worker runs for it.

A task carries everything its cell needs as text (the policy and its parents, the scenario) and
names its book by digest; the book's text travels once per worker, not once per task (see
:mod:`engine.sweep.execute`).  So a worker needs nothing but the liqpolicy package: no shared
file system, no grid.  Each worker process keeps what it parsed, keyed by content, because
consecutive cells usually share their book, policy or scenario.
"""

from __future__ import annotations

import hashlib
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from engine._version import __version__
from engine.errors import EngineError, EvaluationError, PolicyError
from engine.policy.load import check_policy_texts
from engine.policy.model import Policy
from engine.simulation.book import read_book
from engine.simulation.model import Book, Scenario
from engine.simulation.scenario import read_scenario
from engine.simulation.simulate import simulate
from engine.source import Diagnostic, render_text
from engine.sweep.figures import figures_of

Status = Literal["ok", "error", "internal_error"]
Chain = tuple[tuple[str, str], ...]  # (path, text) of a policy and its parents, child first


@dataclass(frozen=True, slots=True)
class CellTask:
    """What a worker needs to run one cell; `key` identifies the cell's content for resuming."""

    index: int
    key: str
    policy: Chain
    scenario: tuple[str, str]  # (path, text)
    book_digest: str
    book_path: str


@dataclass(frozen=True, slots=True)
class CellOutcome:
    """What a worker sends back: the figures, or the errors that stopped the cell."""

    index: int
    status: Status
    policy_id: str | None = None
    policy_digest: str | None = None
    scenario_id: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()
    version: str = __version__


def text_digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\0")
    return "sha256:" + hasher.hexdigest()


def error_dicts(
    diagnostics: tuple[Diagnostic, ...] | list[Diagnostic],
) -> tuple[dict[str, Any], ...]:
    """Diagnostics as the rows carry them: the documented fields plus the rendered text."""
    return tuple({**d.as_dict(), "text": render_text(d)} for d in diagnostics)


# -- per-process caches ------------------------------------------------------------------------


class _Cache:
    """A small least-recently-used cache of parsed inputs, by content digest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = make()
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_POLICIES = _Cache(64)
_SCENARIOS = _Cache(64)
_BOOKS = _Cache(4)  # books are the large input; a grid rarely has more than a few


def _policy(chain: Chain) -> Policy | list[Diagnostic]:
    def make() -> Policy | list[Diagnostic]:
        policy, diagnostics = check_policy_texts(chain)
        return policy if policy is not None else diagnostics

    result: Policy | list[Diagnostic] = _POLICIES.get(
        text_digest(*(t for c in chain for t in c)), make
    )
    return result


def _scenario(path: str, text: str) -> Scenario:
    scenario: Scenario = _SCENARIOS.get(text_digest(path, text), lambda: read_scenario(text, path))
    return scenario


def _book(digest: str, path: str, text: str) -> Book:
    book: Book = _BOOKS.get(f"{digest}:{path}", lambda: read_book(text, path))
    return book


def run_cell(task: CellTask, book_text: str) -> CellOutcome:
    """Run one cell; every failure becomes the outcome's errors, never an exception."""
    policy_id: str | None = None
    digest: str | None = None
    scenario_id: str | None = None
    try:
        loaded = _policy(task.policy)
        if not isinstance(loaded, Policy):
            raise PolicyError(diagnostics=[d for d in loaded if d.severity == "error"])
        policy_id, digest = loaded.id, loaded.digest
        scenario = _scenario(*task.scenario)
        scenario_id = scenario.id
        book = _book(task.book_digest, task.book_path, book_text)
        result = simulate(loaded, book, scenario)
    except PolicyError as error:
        return _failed(task, "error", error.diagnostics, policy_id, digest, scenario_id)
    except EngineError as error:
        diagnostics = (
            [error.diagnostic()]
            if isinstance(error, EvaluationError)
            else list(getattr(error, "diagnostics", ()))
            or [Diagnostic("E500", str(error), path=task.policy[0][0])]
        )
        return _failed(task, "error", diagnostics, policy_id, digest, scenario_id)
    except Exception as error:  # an InternalError or any other bug: reported in the row
        message = f"internal error (a bug in liqpolicy, please report it): {type(error).__name__}: {error}"
        detail = Diagnostic(
            "internal",
            message,
            path=task.policy[0][0],
            hint="".join(traceback.format_exception(error)).strip(),
        )
        return _failed(task, "internal_error", [detail], policy_id, digest, scenario_id)
    return CellOutcome(
        index=task.index,
        status="ok",
        policy_id=policy_id,
        policy_digest=digest,
        scenario_id=scenario_id,
        figures=figures_of(result.summary()),
    )


def _failed(
    task: CellTask,
    status: Status,
    diagnostics: tuple[Diagnostic, ...] | list[Diagnostic],
    policy_id: str | None,
    digest: str | None,
    scenario_id: str | None,
) -> CellOutcome:
    return CellOutcome(
        index=task.index,
        status=status,
        policy_id=policy_id,
        policy_digest=digest,
        scenario_id=scenario_id,
        errors=error_dicts(list(diagnostics)),
    )

"""The comparison engine behind `POST /v1/compare`, when this build has one.

Found at request time by import, so the server runs (answering 501 for comparisons) in a build
without the simulation package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.policy.model import Policy
from engine.server.bodies import BODY_PATH


@dataclass(frozen=True, slots=True)
class ComparisonBackend:
    """The comparison engine, reached through the two calls the endpoint needs."""

    compare: Callable[..., Any]  # compare(policies, book, scenario, *, limit) -> Comparison
    read_book: Callable[..., Any]  # read_book(text, path) -> Book
    load_scenario: Callable[[str], Any]  # load_scenario(id) -> Scenario
    scenario_paths: Callable[[], list[Any]]  # the shipped scenario files

    def scenario_ids(self) -> list[str]:
        return [Path(p).stem for p in self.scenario_paths()]

    def run(self, policies: list[Policy], book_text: str, scenario_id: str, limit: int) -> Any:
        book = self.read_book(book_text, BODY_PATH)
        scenario = self.load_scenario(scenario_id)
        return self.compare(policies, book, scenario, limit=limit).as_dict()


COMPARE_MODULES = ("engine.compare", "engine.simulation.compare")


def comparison_backend() -> ComparisonBackend | None:
    """The comparison engine when this build has one (`engine.compare`, or where it landed,
    `engine.simulation.compare`); None otherwise, and the endpoint answers 501."""
    for name in COMPARE_MODULES:
        try:
            module: ModuleType = import_module(name)
            from engine.simulation.book import read_book  # noqa: PLC0415  # optional engine part
            from engine.simulation.scenario import (  # noqa: PLC0415
                load_scenario,
                shipped_scenario_paths,
            )
        except ImportError:
            continue
        function = getattr(module, "compare", None)
        if callable(function):
            return ComparisonBackend(function, read_book, load_scenario, shipped_scenario_paths)
    return None

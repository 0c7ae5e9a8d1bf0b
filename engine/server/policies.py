"""The set of policies a server answers for, and its all-or-nothing reload.

A :class:`PolicySet` is immutable once built: requests take a reference to the current set at
their start and use it to the end, so a reload never changes a policy under a running request.
:class:`PolicyStore` swaps the current set atomically, and only for a set whose every file is
valid; a failed reload keeps the last good set and returns the diagnostics that explain why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from engine.policy.load import check_policy
from engine.policy.model import Policy
from engine.policy.packaged import shipped_policy_paths
from engine.source import Diagnostic, sort_diagnostics

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Loaded policies by id, where they came from, and when they were loaded."""

    policies: Mapping[str, Policy]
    source: str  # the --policies directory, or "shipped"
    loaded_at: str  # UTC, ISO 8601
    warnings: tuple[Diagnostic, ...] = field(default=())

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies.values())

    def __len__(self) -> int:
        return len(self.policies)

    def get(self, policy_id: str) -> Policy | None:
        return self.policies.get(policy_id)

    @property
    def digests(self) -> dict[str, str]:
        return {p.id: p.digest for p in self}


def policy_paths(directory: Path | None) -> list[Path]:
    """Every *.yaml/*.yml directly in `directory`, or the shipped policies."""
    if directory is None:
        return shipped_policy_paths()
    return sorted(p for p in directory.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())


def load_policy_set(directory: Path | None) -> tuple[PolicySet | None, list[Diagnostic]]:
    """Load and check every policy; the set only when all are valid and their ids unique."""
    where = str(directory) if directory is not None else "shipped"
    try:
        paths = policy_paths(directory)
    except OSError as error:
        message = f"cannot read the policies directory: {error.strerror or error}"
        return None, [Diagnostic("E001", message, path=where)]
    if not paths:
        return None, [
            Diagnostic(
                "E001",
                "no policy files (*.yaml) in the policies directory",
                path=where,
                hint="put at least one policy file there",
            )
        ]
    diagnostics: list[Diagnostic] = []
    policies: dict[str, Policy] = {}
    failed = False
    for path in paths:
        policy, found = check_policy(path)
        diagnostics.extend(found)
        if policy is None:
            failed = True
            continue
        if policy.id in policies:
            other = policies[policy.id].path
            diagnostics.append(
                Diagnostic(
                    "E001",
                    f"policy id '{policy.id}' is also the id of {other}",
                    path=str(path),
                    hint="every policy served needs its own id",
                )
            )
            failed = True
            continue
        policies[policy.id] = policy
    ordered = sort_diagnostics(diagnostics)
    if failed:
        return None, ordered
    loaded_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    warnings = tuple(d for d in ordered if d.severity == "warning")
    return PolicySet(
        MappingProxyType(dict(sorted(policies.items()))), where, loaded_at, warnings
    ), ordered


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did: whether the set changed, the set now served, and every diagnostic."""

    ok: bool
    current: PolicySet
    diagnostics: tuple[Diagnostic, ...]


class PolicyStore:
    """The current policy set of one server process; reloads are serialized, reads lock-free."""

    def __init__(self, initial: PolicySet, directory: Path | None) -> None:
        self._current = initial
        self.directory = directory
        self._reload_lock = threading.Lock()

    @property
    def current(self) -> PolicySet:
        return self._current  # one reference read: atomic, never a half-built set

    def reload(self) -> ReloadOutcome:
        """Load the directory again; swap it in only when every policy is valid."""
        with self._reload_lock:
            loaded, diagnostics = load_policy_set(self.directory)
            if loaded is None:
                return ReloadOutcome(False, self._current, tuple(diagnostics))
            self._current = loaded
            return ReloadOutcome(True, loaded, tuple(diagnostics))

"""Exceptions raised on purpose by liqpolicy.

Hierarchy (catch by phase)::

    EngineError                  root of every exception raised on purpose
    ├── PolicyError (ValueError) a policy, account or scenario file cannot be used;
    │                            carries every diagnostic found, sorted by position
    │   └── ExpressionError      an expression did not parse or check (CLI `expr`, API)
    ├── EvaluationError          a checked expression failed at run time: division by zero,
    │                            overflow, missing input, value out of a table's range
    └── InputError (ValueError)  an account or market input is malformed

User mistakes are always one of these; anything else escaping the engine is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.source import Diagnostic, Span, render_all, sort_diagnostics


class EngineError(Exception):
    """Root of every exception liqpolicy raises on purpose."""


class PolicyError(EngineError, ValueError):
    """Input could not be used; `diagnostics` holds every problem found, sorted."""

    def __init__(self, message: str = "", *, diagnostics: Sequence[Diagnostic] = ()) -> None:
        ordered = tuple(sort_diagnostics(diagnostics))
        super().__init__(message or render_all(ordered))
        self.diagnostics: tuple[Diagnostic, ...] = ordered


class ExpressionError(PolicyError):
    """An expression failed to parse or type-check."""


class InputError(EngineError, ValueError):
    """Account, position or market input is malformed; `diagnostics` locate the fields."""

    def __init__(self, message: str = "", *, diagnostics: Sequence[Diagnostic] = ()) -> None:
        ordered = tuple(sort_diagnostics(diagnostics))
        super().__init__(message or render_all(ordered))
        self.diagnostics: tuple[Diagnostic, ...] = ordered


class EvaluationError(EngineError):
    """A checked expression failed while running; names the expression's location and values."""

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        code: str = "E500",
        values: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.span = span
        self.code = code
        self.values: tuple[tuple[str, str], ...] = tuple(values)

    def diagnostic(self) -> Diagnostic:
        hint = ", ".join(f"{name} = {value}" for name, value in self.values) or None
        return Diagnostic(
            code=self.code,
            message=str(self.args[0]),
            span=self.span,
            hint=f"values: {hint}" if hint else None,
        )

    def __str__(self) -> str:
        message = str(self.args[0])
        where = f"{self.span.location()}: " if self.span is not None else ""
        values = ", ".join(f"{name} = {value}" for name, value in self.values)
        return f"{where}{message}" + (f" ({values})" if values else "")

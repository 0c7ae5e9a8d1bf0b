"""Exceptions raised on purpose by liqpolicy.

Two roots, because callers must tell a user's mistake from liqpolicy's own (catch by phase)::

    EngineError                      root of every user-input error: CLI exit 2, HTTP 4xx
    ├── DiagnosticError (ValueError) carries every diagnostic found, sorted by position
    │   ├── PolicyError              a policy, account or scenario file cannot be used
    │   │   └── ExpressionError      an expression did not parse or check (CLI `expr`, API)
    │   └── InputError               an account or market input is malformed
    └── EvaluationError              a checked expression failed at run time: division by zero,
                                     overflow, missing input, value out of a table's range

    InternalError                    liqpolicy itself is wrong: CLI exit 3, HTTP 500
    └── ConservationError            a simulation created or destroyed money

User mistakes are always an :class:`EngineError`; an :class:`InternalError`, or any other
exception escaping the engine, is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.source import Diagnostic, Span, render_all, sort_diagnostics


class EngineError(Exception):
    """Root of every exception liqpolicy raises on purpose."""


class DiagnosticError(EngineError, ValueError):
    """Input could not be used; `diagnostics` holds every problem found, sorted by position."""

    def __init__(self, message: str = "", *, diagnostics: Sequence[Diagnostic] = ()) -> None:
        ordered = tuple(sort_diagnostics(diagnostics))
        super().__init__(message)
        self.diagnostics: tuple[Diagnostic, ...] = ordered

    def __str__(self) -> str:
        # Rendered when asked, not when raised: callers that only read `diagnostics` (the CLI,
        # the server) never pay for rendering thousands of them.
        return str(self.args[0]) or render_all(self.diagnostics)


class PolicyError(DiagnosticError):
    """A policy, account or scenario file could not be used."""


class ExpressionError(PolicyError):
    """An expression failed to parse or type-check."""


class InputError(DiagnosticError):
    """Account, position or market input is malformed; `diagnostics` locate the fields."""


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


class InternalError(Exception):
    """Root of failures that mean liqpolicy itself is wrong, never the input (exit 3, HTTP 500)."""


class ConservationError(InternalError):
    """Money was created or destroyed: the simulation refuses to report."""

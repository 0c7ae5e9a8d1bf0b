"""Exact decimal arithmetic: the one context every computation runs in.

Floats never enter: :data:`DECIMAL_CONTEXT` traps ``FloatOperation`` as well as invalid
operations, division by zero and overflow.  Precision is generous (50 significant digits), so
rounding only happens where a policy asks for it with ``round(x, step, mode)``; the few inexact
results (like 1/3) are carried at that precision.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

DECIMAL_CONTEXT = decimal.Context(
    prec=50,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.FloatOperation,
    ],
)

# Money moved between balances (a statement's items, the margin they change) is added and
# subtracted exactly: with inputs of up to MAX_DIGITS digits a sum could need more digits than
# DECIMAL_CONTEXT keeps, and a rounded sum would make an exact reconciliation check meaningless.
# Sums of finite decimals are always exact at this precision; `Inexact` traps if one was not.
LEDGER_CONTEXT = decimal.Context(
    prec=decimal.MAX_PREC,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=decimal.MIN_EMIN,
    Emax=decimal.MAX_EMAX,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.FloatOperation],
)

MAX_DIGITS = 60
MAX_EXPONENT = 100

ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "floor": decimal.ROUND_FLOOR,
    "ceil": decimal.ROUND_CEILING,
    "down": decimal.ROUND_DOWN,
    "up": decimal.ROUND_UP,
}

_NUMBER = re.compile(
    r"[+-]?([0-9][0-9_]*)?(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?"
)  # ASCII digits only

_PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")

ZERO = Decimal(0)
ONE = Decimal(1)


class NumberSyntaxError(ValueError):
    """Text is not an acceptable decimal number (malformed, too many digits, huge exponent)."""


def parse_decimal(text: str) -> Decimal:
    """Parse decimal text exactly, rejecting floats' specials and hostile sizes.

    Accepts ``12``, ``-0.5``, ``1_000``, ``1e6``; rejects ``nan``, ``inf``, more than
    :data:`MAX_DIGITS` digits, and exponents beyond ±:data:`MAX_EXPONENT`, *before* building a
    Decimal, so ``1e999999999`` costs nothing.
    """
    if len(text) <= MAX_DIGITS and _PLAIN.fullmatch(text) is not None:
        return Decimal(text)  # the common case: no exponent, separator or padding, few digits
    stripped = text.strip()
    match = _NUMBER.fullmatch(stripped)
    if not stripped or match is None or not (match.group(1) or match.group(2)):
        raise NumberSyntaxError(f"'{text}' is not a decimal number")
    digits = sum(ch.isdigit() for ch in (match.group(1) or "") + (match.group(2) or ""))
    if digits > MAX_DIGITS:
        raise NumberSyntaxError(f"number has {digits} digits, the limit is {MAX_DIGITS}")
    exponent_text = match.group(3)
    if exponent_text:
        exponent_digits = exponent_text[1:].lstrip("+-").lstrip("0")
        if len(exponent_digits) > 3 or int(exponent_digits or "0") > MAX_EXPONENT:
            raise NumberSyntaxError(
                f"exponent in '{text}' is out of range, the limit is ±{MAX_EXPONENT}"
            )
    return Decimal(stripped.replace("_", ""))


def format_decimal(value: Decimal) -> str:
    """Plain (never scientific) text for a decimal, without a trailing '.0' or exponent."""
    if not value:
        return "0"
    text = str(value)  # plain unless the exponent is large: cheaper than format() for the rest
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def group_thousands(text: str) -> str:
    """Plain decimal text with thousands separators (``-1234567.5`` → ``-1,234,567.5``), for
    display only; text that is not a plain decimal comes back unchanged."""
    sign = "-" if text.startswith("-") else ""
    whole, dot, fraction = text.removeprefix("-").partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()):
        return text
    return sign + f"{int(whole):,}" + (f".{fraction}" if fraction else "")


def quantize_to_step(value: Decimal, step: Decimal, mode: str) -> Decimal:
    """Round `value` to a multiple of `step` with a named mode (see :data:`ROUNDING_MODES`)."""
    if step <= 0:
        raise ValueError(f"rounding step must be positive, was {format_decimal(step)}")
    units = (value / step).quantize(ONE, rounding=ROUNDING_MODES[mode], context=DECIMAL_CONTEXT)
    return DECIMAL_CONTEXT.multiply(units, step)

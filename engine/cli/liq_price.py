"""`liqpolicy liq-price POLICY ...`: liquidation and bankruptcy price of one position."""

from __future__ import annotations

import argparse
import textwrap
from decimal import Decimal

from engine.cli.command import Command, Exit, UsageError, add_format_option
from engine.cli.output import Output
from engine.mechanics.quote import quote_prices
from engine.numbers import NumberSyntaxError, parse_decimal
from engine.policy.load import load_policy
from engine.report.account_text import money


def _number(option: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return parse_decimal(text)
    except NumberSyntaxError as error:
        raise UsageError(f"{option}: {error}") from None


def run(args: argparse.Namespace, output: Output) -> int:
    policy = load_policy(args.policy)
    if args.symbol not in policy.markets:
        from engine.dsl.check import did_you_mean  # noqa: PLC0415  # only on the error path

        raise UsageError(
            f"unknown symbol '{args.symbol}' in {policy.id}",
            did_you_mean(args.symbol, policy.markets) or "markets: " + ", ".join(policy.markets),
        )
    size = _number("--size", args.size)
    entry = _number("--entry", args.entry)
    assert size is not None and entry is not None
    leverage = _number("--leverage", args.leverage)
    margin = _number("--margin", args.margin)
    mark = _number("--mark", args.mark)
    # What the account format requires of the same numbers, said in terms of the options.
    for option, value, text in (
        ("--size", size, args.size),
        ("--entry", entry, args.entry),
        ("--leverage", leverage, args.leverage),
        ("--mark", mark, args.mark),
    ):
        if value is not None and value <= 0:
            raise UsageError(f"{option} must be positive, was {text}")
    if margin is not None and margin < 0:
        raise UsageError(f"--margin must not be negative, was {args.margin}")
    quote = quote_prices(
        policy,
        symbol=args.symbol,
        side=args.side,
        size=size,
        entry_price=entry,
        leverage=leverage,
        margin=margin,
        mode=args.mode,
        wallet=_number("--wallet", args.wallet),
        mark_price=mark,
    )
    if args.format == "json":
        output.json({"policy": policy.id, **quote.as_dict()})
        return Exit.OK
    output.line(
        f"{policy.id}: {quote.symbol} {quote.side} {money(quote.size)} @ {money(quote.entry_price)}"
        f" ({quote.margin_mode}, margin {money(quote.margin)})"
    )
    output.line(f"  liquidation price  {money(quote.liquidation_price)}")
    output.line(f"  bankruptcy price   {money(quote.bankruptcy_price)}")
    if quote.tier is not None:
        fields = ", ".join(f"{k} {money(v)}" for k, v in quote.tier.items())
        output.line(f"  tier at liquidation: {fields}")
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy", metavar="POLICY", help="policy file, or the id of a shipped policy"
    )
    parser.add_argument("--symbol", required=True, help="market symbol, e.g. BTCUSDT")
    parser.add_argument("--side", required=True, choices=("long", "short"))
    parser.add_argument("--size", required=True, help="size in contracts of the policy's market")
    parser.add_argument("--entry", required=True, help="entry price")
    margin = parser.add_mutually_exclusive_group(required=True)
    margin.add_argument("--leverage", help="leverage; the margin is notional at entry / leverage")
    margin.add_argument(
        "--margin", help="isolated margin (or, in cross mode without --wallet, the wallet)"
    )
    parser.add_argument("--mode", choices=("isolated", "cross"), default="isolated")
    parser.add_argument("--wallet", help="cross wallet balance (cross mode)")
    parser.add_argument("--mark", help="current mark price (default: the entry price)")
    add_format_option(parser)


COMMAND = Command(
    name="liq-price",
    summary="liquidation and bankruptcy price of one position",
    description=textwrap.dedent("""\
        Solve the liquidation price (where the policy's trigger starts to hold) and the
        bankruptcy price (where the margin balance reaches zero) of one position, holding
        everything else fixed.  Tiers follow the notional at the liquidation price.  Prices are
        reported on the market's tick grid as the policy declares (by default the first tick at
        which the condition holds)."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy liq-price policies/my-venue.yaml --symbol BTCUSDT --side long --size 2 --entry 60000 --leverage 10",
        "liqpolicy liq-price policies/my-venue.yaml --symbol BTCUSDT --side short --size 1 --entry 60000 --margin 6000 --format json",
    ),
)

"""Synthetic books: a seeded, exactly reproducible population of leveraged accounts.

:func:`generate_book` draws every random choice from one ``random.Random(seed)`` as integers and
builds each amount as a Decimal from them; the log-normal sizes use Decimal's correctly rounded
``exp``, never the platform's floating-point maths, so the same seed gives the same book, byte for
byte, on every machine and Python version.

The distributions (documented in docs/scenarios.md) aim at a realistic mix rather than any one
venue's statistics:

- side: 55 % long, 45 % short, so a fall leaves profitable shorts for ADL and clawback (and a
  squeeze profitable longs);
- margin mode: 60 % cross, 40 % isolated (one mode per account);
- leverage: round numbers, mostly 2-20x with a tail to 50-125x (:data:`LEVERAGE_WEIGHTS`),
  capped by notional like exchanges' risk tiers (:data:`LEVERAGE_CAPS`);
- size: notional log-normal around 5,000 in the quote currency (sigma 1.5), clamped to
  100 … 5,000,000, plus 0.5 % whales drawn log-uniformly from 500,000 … 5,000,000;
- entry price: the start price moved by a triangular offset within ±4 %, mirrored to the
  profitable side when the position would otherwise have lost more than about a quarter of its
  initial margin at the start price (an open position is one that has survived so far: at the
  start no account is close to liquidation);
- wallet: cross accounts hold their positions' initial margin plus a buffer (mostly 0-200 %),
  isolated accounts hold each position's margin in ``isolated_margin`` and a small wallet
  (0-25 % of that margin).

Inverse (coin-margined) instruments, named in ``inverse``, draw the same notional in the quote
currency but write it as the position's face value (``quantity``, on a grid of 100 quote units,
so venues' 100 USD and 10 USD contracts divide it exactly), with ``kind: inverse``; their margins
and wallets are in the base coin, rounded (up, for margins) to 0.00000001.  An account holds
several instruments only if they settle in one currency.
"""

from __future__ import annotations

import decimal
import random
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from engine.numbers import format_decimal
from engine.simulation.model import Book, BookAccount, BookPosition

DEFAULT_INSTRUMENTS: Mapping[str, Decimal] = MappingProxyType(
    {"BTC/USDT": Decimal("60000"), "ETH/USDT": Decimal("2400")}
)

# (leverage, weight in %): traders pick round numbers; 74 % lie in 2-20x, 12 % in 50-125x
LEVERAGE_WEIGHTS: tuple[tuple[int, int], ...] = (
    (1, 3),
    (2, 8),
    (3, 9),
    (5, 14),
    (8, 4),
    (10, 17),
    (12, 3),
    (15, 6),
    (20, 13),
    (25, 6),
    (30, 3),
    (40, 2),
    (50, 5),
    (75, 2),
    (100, 3),
    (125, 2),
)
# (notional up to, maximum leverage): larger positions get less leverage, as in risk tiers
LEVERAGE_CAPS: tuple[tuple[int, int], ...] = (
    (50_000, 125),
    (250_000, 100),
    (1_000_000, 50),
    (5_000_000, 20),
)
LEVERAGE_CAP_ABOVE = 10
MEDIAN_NOTIONAL = 5_000
SIGMA = Decimal("1.5")
MIN_NOTIONAL = 100
MAX_NOTIONAL = 5_000_000
WHALE_PER_MILLE = 5  # 0.5 % of positions
WHALE_LOW = 500_000
LONG_PERCENT = 55
CROSS_PERCENT = 60
ENTRY_SPREAD_BPS = 200  # each of two uniform draws; their sum is triangular within ±4 %
MAX_LOSS_BPS_X_LEVERAGE = 2_500  # a quarter of the initial margin, in bps of the entry price
CENT = Decimal("0.01")
INVERSE_FACE_STEP = Decimal(100)  # quote units of face value
COIN_STEP = Decimal("0.00000001")  # margins and wallets of inverse positions, in the coin

_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.FloatOperation,
    ],
)


_LN10 = _CONTEXT.ln(Decimal(10))
_WHALE_DECADES = _CONTEXT.log10(Decimal(MAX_NOTIONAL) / Decimal(WHALE_LOW))
_SQRT3_E7 = 17_320_508  # sqrt(3) * 10^7, for scaling a sum of 4 uniforms to unit variance


def _power_of_ten_at_least(value: Decimal) -> Decimal:
    """The smallest power of ten that is at least `value`."""
    exponent = value.adjusted()
    step = Decimal(1).scaleb(exponent)
    return step if step >= value else step.scaleb(1)


def quantity_step(price: Decimal) -> Decimal:
    """Lot size for an instrument priced `price`: the smallest power of ten worth at least 20.

    60,000 -> 0.001 and 122,000 -> 0.001 (BTC), 2,400 -> 0.01 (ETH), 0.5 -> 100.
    """
    return _power_of_ten_at_least(_CONTEXT.divide(Decimal(20), price))


def price_tick(price: Decimal) -> Decimal:
    """Entry-price grid: the largest power of ten not above price / 100,000 (60,000 -> 0.1)."""
    return Decimal(1).scaleb(_CONTEXT.divide(price, Decimal(100_000)).adjusted())


def _quantize(value: Decimal, step: Decimal, rounding: str = decimal.ROUND_HALF_EVEN) -> Decimal:
    units = _CONTEXT.divide(value, step).quantize(Decimal(1), rounding=rounding)
    return _CONTEXT.multiply(units, step)


class _Generator:
    """Draws from one seeded RNG in a fixed order; amounts are built as Decimals.

    Uniform draws use ``random()`` (53 exact bits, the same on every platform) only for
    comparisons and integer indices; derived amounts that recur (a log-normal size for a given
    z, an entry price for a given offset) are computed once and cached.
    """

    def __init__(
        self,
        seed: int,
        instruments: Mapping[str, Decimal],
        steps: Mapping[str, Decimal],
        inverse: frozenset[str] = frozenset(),
    ) -> None:
        self.rng = random.Random(seed)
        self.names = list(instruments)
        self.prices = dict(instruments)
        self.inverse = inverse
        self.steps = {
            n: steps.get(n) or (INVERSE_FACE_STEP if n in inverse else quantity_step(p))
            for n, p in instruments.items()
        }
        self.groups: dict[str, list[str]] = {}  # instruments by settlement currency
        for name in self.names:
            self.groups.setdefault(self.currency(name), []).append(name)
        self.ticks = {n: price_tick(p) for n, p in instruments.items()}
        self.weights = [3] + [2] * (len(self.names) - 1)  # the first instrument is the busiest
        self.leverages = [lev for lev, weight in LEVERAGE_WEIGHTS for _ in range(weight)]
        self.sizes: dict[int, Decimal] = {}
        self.entries: dict[tuple[str, int], Decimal] = {}
        self.long = LONG_PERCENT / 100
        self.isolated = CROSS_PERCENT / 100

    def currency(self, name: str) -> str:
        base, _, quote = name.partition("/")
        return base if name in self.inverse else quote

    def below(self, count: int) -> int:
        """A uniform integer in [0, count)."""
        return int(self.rng.random() * count)

    def instrument(self) -> str:
        draw = self.below(sum(self.weights))
        for name, weight in zip(self.names, self.weights, strict=True):
            if draw < weight:
                return name
            draw -= weight
        return self.names[-1]  # pragma: no cover - the weights sum to the draw's range

    def notional(self) -> Decimal:
        rng = self.rng
        if self.below(1000) < WHALE_PER_MILLE:
            fraction = Decimal(self.below(1001)).scaleb(-3)
            exponent = _CONTEXT.multiply(_LN10, _CONTEXT.multiply(fraction, _WHALE_DECADES))
            factor = _CONTEXT.exp(exponent)
            return _quantize(_CONTEXT.multiply(Decimal(WHALE_LOW), factor), Decimal(1))
        # Irwin-Hall: four 16-bit uniforms, centred and scaled to unit variance, in thousandths
        bits = rng.getrandbits(64)
        total = (bits & 0xFFFF) + (bits >> 16 & 0xFFFF) + (bits >> 32 & 0xFFFF) + (bits >> 48)
        milli = (total - 131_070) * _SQRT3_E7 // 655_350_000_000
        size = self.sizes.get(milli)
        if size is None:
            exponent = _CONTEXT.multiply(SIGMA, Decimal(milli).scaleb(-3))
            value = _quantize(
                _CONTEXT.multiply(Decimal(MEDIAN_NOTIONAL), _CONTEXT.exp(exponent)), Decimal(1)
            )
            size = self.sizes[milli] = min(max(value, Decimal(MIN_NOTIONAL)), Decimal(MAX_NOTIONAL))
        return size

    def leverage(self, notional: Decimal) -> int:
        chosen = self.leverages[self.below(len(self.leverages))]
        for limit, cap in LEVERAGE_CAPS:
            if notional <= limit:
                return min(chosen, cap)
        return min(chosen, LEVERAGE_CAP_ABOVE)

    def entry(self, name: str, offset: int) -> Decimal:
        """The start price moved by `offset` basis points, on the instrument's tick grid."""
        price = self.entries.get((name, offset))
        if price is None:
            moved = _CONTEXT.multiply(self.prices[name], Decimal(10_000 + offset)).scaleb(-4)
            price = self.entries[(name, offset)] = _quantize(moved, self.ticks[name])
        return price

    def position(self, name: str, isolated: bool) -> tuple[BookPosition, Decimal]:
        """A position and its initial margin (notional at entry / leverage, rounded up)."""
        side = "long" if self.rng.random() < self.long else "short"
        target = self.notional()
        leverage = self.leverage(target)
        spread = 2 * ENTRY_SPREAD_BPS + 1
        offset = self.below(spread) + self.below(spread) - 2 * ENTRY_SPREAD_BPS
        # An open position has survived so far: at the start price it has lost at most a
        # quarter of its initial margin (2,500 / leverage basis points), else it is mirrored
        # to the profitable side of the start price.
        against = offset if side == "long" else -offset
        if against * leverage > MAX_LOSS_BPS_X_LEVERAGE:
            offset = -offset
        entry = self.entry(name, offset)
        step = self.steps[name]
        lev = Decimal(leverage)
        if name in self.inverse:  # face value in the quote; margin in the coin
            quantity = max(_quantize(target, step), step)
            coins = _CONTEXT.divide(quantity, entry)
            margin = _quantize(_CONTEXT.divide(coins, lev), COIN_STEP, decimal.ROUND_CEILING)
        else:
            quantity = max(_quantize(_CONTEXT.divide(target, entry), step), step)
            notional = _CONTEXT.multiply(quantity, entry)
            margin = _quantize(_CONTEXT.divide(notional, lev), CENT, decimal.ROUND_CEILING)
        position = BookPosition(
            instrument=name,
            side=side,
            quantity=quantity,
            entry_price=entry,
            margin_mode="isolated" if isolated else "cross",
            leverage=lev,
            isolated_margin=margin if isolated else None,
            kind="inverse" if name in self.inverse else "linear",
        )
        return position, margin

    def buffer_percent(self) -> int:
        """Cross wallets: margin plus 0-50 % (35 %), 50-200 % (40 %), 200-500 % (20 %) or more."""
        bucket = self.below(100)
        if bucket < 35:
            return self.below(51)
        if bucket < 75:
            return 50 + self.below(151)
        if bucket < 95:
            return 200 + self.below(301)
        return 500 + self.below(1501)

    def account(self, account_id: str, multi: float) -> BookAccount:
        rng = self.rng
        isolated = rng.random() >= self.isolated
        if len(self.groups) > 1:  # several settlement currencies: combine within one only
            first = self.instrument()
            group = self.groups[self.currency(first)]
            names = [first]
            if multi and len(group) > 1 and rng.random() < multi:
                chosen = set(rng.sample(group, 2 + self.below(len(group) - 1)))
                names = [n for n in group if n in chosen]
        elif multi and len(self.names) > 1 and rng.random() < multi:
            count = 2 + self.below(len(self.names) - 1)
            chosen = set(rng.sample(self.names, count))
            names = [n for n in self.names if n in chosen]
        else:
            names = [self.instrument()]
        positions: list[BookPosition] = []
        margin_total = Decimal(0)
        for name in names:
            position, margin = self.position(name, isolated)
            positions.append(position)
            margin_total = _CONTEXT.add(margin_total, margin)
        # isolated: a small wallet; cross: the margin plus a buffer
        share = Decimal(self.below(26) if isolated else 100 + self.buffer_percent())
        unit = COIN_STEP if names[0] in self.inverse else CENT
        wallet = _quantize(_CONTEXT.multiply(margin_total, share).scaleb(-2), unit)
        return BookAccount(account_id, wallet, tuple(positions))


def generate_book(
    accounts: int,
    seed: int,
    *,
    instruments: Mapping[str, Decimal] = DEFAULT_INSTRUMENTS,
    multi_instrument_share: Decimal = Decimal("0"),
    quantity_steps: Mapping[str, Decimal] | None = None,
    inverse: frozenset[str] = frozenset(),
) -> Book:
    """A synthetic book of `accounts` accounts; the same arguments always give the same book.

    `instruments` maps each instrument to its start price (entry prices spread around it).
    Each account holds one instrument, except a `multi_instrument_share` (0 … 1) of accounts that
    hold two or more.  `quantity_steps` overrides the lot size derived by :func:`quantity_step`.
    Instruments in `inverse` are coin-margined: face values, margins and wallets in the coin.
    """
    if accounts < 1:
        raise ValueError(f"accounts must be at least 1, was {accounts}")
    if not instruments:
        raise ValueError("at least one instrument is needed")
    for name, price in instruments.items():
        if not isinstance(price, Decimal) or not price > 0:
            raise ValueError(f"start price of {name} must be a positive Decimal, was {price!r}")
    if not isinstance(multi_instrument_share, Decimal) or not (0 <= multi_instrument_share <= 1):
        raise ValueError("multi_instrument_share must be a Decimal between 0 and 1")
    unknown = sorted(set(inverse) - set(instruments))
    if unknown:
        raise ValueError(f"inverse instruments not in the book's instruments: {', '.join(unknown)}")
    generator = _Generator(seed, instruments, quantity_steps or {}, frozenset(inverse))
    multi = int(multi_instrument_share * 1_000_000) / 1_000_000  # a probability for random()
    width = max(6, len(str(accounts)))
    book_accounts = tuple(
        generator.account(f"acct-{number:0{width}d}", multi) for number in range(1, accounts + 1)
    )
    meta = {
        "generator": "liqpolicy book generate",
        "accounts": accounts,
        "seed": seed,
        "instruments": {name: format_decimal(price) for name, price in instruments.items()},
        "multi_instrument_share": format_decimal(multi_instrument_share),
    }
    if inverse:
        meta["inverse"] = sorted(inverse)
    return Book(book_accounts, path="", meta=meta)

"""Synthetix v3 perps (PerpsMarketProxy): everything keeper knows about the protocol lives here.

Reads use the deployed proxy's interface (`abis/PerpsMarketProxy.json`), batched through
Multicall3 at one block: per market the index price, skew and margin/funding parameters; per
account the collateral, each open position (`getOpenPosition`: pnl with funding, size) and the
protocol's own verdict (`getAvailableMargin`, `getRequiredMargins`, `canLiquidate`). The integer
math below replicates Synthetix's margin requirements and fill price (decimal math with 18
digits, truncating), so a protective action's size is the one the market will accept.

Units: USD and sizes with 18 decimals; prices are USD per unit of the market's asset (1e18).
Columns: one per market, in `getMarkets()` order. An account is keyed in the book as "#<id>".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_utils import to_checksum_address

from keeper.abi import event, fn, need, word
from keeper.chain import Call, Chain
from keeper.errors import TransientError
from keeper.risk.health import PerpArrays

NAME = "perps"
ABI = "PerpsMarketProxy"
UNIT = 10**18
MAX_UINT256 = 2**256 - 1


def tdiv(a: int, b: int) -> int:
    """Solidity's signed division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def account_key(account_id: int) -> str:
    return f"#{account_id}"


@dataclass(frozen=True)
class PerpMarket:
    market_id: int
    symbol: str
    skew_scale: int
    max_funding_velocity: int
    initial_margin_ratio: int
    minimum_initial_margin_ratio: int
    maintenance_margin_scalar: int
    flag_reward_ratio: int
    minimum_position_margin: int


@dataclass(frozen=True)
class PerpsState:
    """One block of the perps market: every market's index price and skew, the reward guards."""

    block: int
    timestamp: int
    markets: tuple[PerpMarket, ...]
    prices: tuple[int | None, ...]
    """indexPrice per market (None: the market refused to price, e.g. a stale oracle)."""
    skews: tuple[int, ...]
    min_keeper_reward: int
    max_keeper_reward: int

    def column_of_market(self, market_id: int) -> int:
        for i, m in enumerate(self.markets):
            if m.market_id == market_id:
                return i
        raise KeyError(f"perps market {market_id} is not listed")

    def arrays(self) -> PerpArrays:
        def col(values: Iterable[float]) -> np.ndarray:
            return np.array(list(values), dtype=float)

        ms = self.markets
        return PerpArrays(
            price_base=col((p or 0) / UNIT for p in self.prices),
            skew_scale=col(m.skew_scale / UNIT for m in ms),
            initial_margin_ratio=col(m.initial_margin_ratio / UNIT for m in ms),
            minimum_initial_margin_ratio=col(m.minimum_initial_margin_ratio / UNIT for m in ms),
            maintenance_margin_scalar=col(m.maintenance_margin_scalar / UNIT for m in ms),
            flag_reward_ratio=col(m.flag_reward_ratio / UNIT for m in ms),
            minimum_position_margin=col(m.minimum_position_margin / UNIT for m in ms),
            min_keeper_reward=self.min_keeper_reward / UNIT,
            max_keeper_reward=self.max_keeper_reward / UNIT,
        )


@dataclass(frozen=True)
class PerpsAccount:
    """One account at one block, with the market's own margin figures."""

    user: str
    account_id: int
    block: int
    collateral: int
    sizes: tuple[int, ...]
    """Position size per market column (signed, 18 decimals)."""
    total_pnl: tuple[int, ...]
    """getOpenPosition totalPnl (pnl at the index price + accrued funding) per market column."""
    accrued_funding: tuple[int, ...]
    available_margin: int
    required_initial_margin: int
    """Including the liquidation reward, as getRequiredMargins returns it."""
    required_maintenance_margin: int
    """Including the liquidation reward: the account is liquidatable below it."""
    max_liquidation_reward: int
    can_liquidate: bool
    prices: tuple[int, ...]
    """The index prices the figures above were computed at."""
    emode: int = 0

    def rows(self) -> tuple[list[float], list[float]]:
        """Book rows: sizes (tokens), and the price-independent part of the margin
        (collateral in column 0, plus each position's pnl - size x price)."""
        sizes = [s / UNIT for s in self.sizes]
        const = [(pnl - s * p / UNIT) / UNIT for pnl, s, p in zip(self.total_pnl, self.sizes, self.prices, strict=True)]
        if const:
            const[0] += self.collateral / UNIT
        return sizes, const

    @property
    def margin_ratio_wad(self) -> int:
        """available margin / (maintenance margin + reward), WAD; below 1e18 exactly when canLiquidate."""
        if not any(self.sizes) or self.required_maintenance_margin == 0:
            return MAX_UINT256
        return max(0, self.available_margin) * UNIT // self.required_maintenance_margin


# ---------------------------------------------------------------------------- Synthetix's math


def fill_price(skew: int, skew_scale: int, size: int, price: int) -> int:
    """The price an order of `size` fills at: the index price with the average skew premium."""
    if skew_scale == 0:
        return price
    pd_before = tdiv(skew * UNIT, skew_scale)
    pd_after = tdiv((skew + size) * UNIT, skew_scale)
    before = price + tdiv(price * pd_before, UNIT)
    after = price + tdiv(price * pd_after, UNIT)
    return (before + after) * UNIT // (2 * UNIT)


def position_margins(m: PerpMarket, size: int, price: int) -> tuple[int, int, int]:
    """(initial margin, maintenance margin, flag reward) of one position."""
    if size == 0:
        return 0, 0, 0
    size_abs = abs(size)
    impact = size_abs * UNIT // m.skew_scale if m.skew_scale else 0
    initial_ratio = impact * m.initial_margin_ratio // UNIT + m.minimum_initial_margin_ratio
    maintenance_ratio = initial_ratio * m.maintenance_margin_scalar // UNIT
    notional = size_abs * price // UNIT
    return (
        notional * initial_ratio // UNIT + m.minimum_position_margin,
        notional * maintenance_ratio // UNIT + m.minimum_position_margin,
        notional * m.flag_reward_ratio // UNIT,
    )


def required_margins(state: PerpsState, sizes: Sequence[int]) -> tuple[int, int, int]:
    """getRequiredMargins for these sizes at the state's prices: (initial + reward,
    maintenance + reward, reward)."""
    im = mm = flag = 0
    for m, size, price in zip(state.markets, sizes, state.prices, strict=True):
        if size:
            a, b, c = position_margins(m, size, price or 0)
            im, mm, flag = im + a, mm + b, flag + c
    if not any(sizes):
        return 0, 0, 0
    reward = min(max(flag, state.min_keeper_reward), state.max_keeper_reward)
    return im + reward, mm + reward, reward


def margin_ratio_after_reduce(acct: PerpsAccount, state: PerpsState, col: int, size_delta: int) -> int:
    """Margin ratio (WAD) after an order of `size_delta` in market column `col` settles at its
    fill price: the available margin moves by -size_delta x (fill - index)."""
    price = state.prices[col] or 0
    fill = fill_price(state.skews[col], state.markets[col].skew_scale, size_delta, price)
    available = acct.available_margin - tdiv(size_delta * (fill - price), UNIT)
    sizes = list(acct.sizes)
    sizes[col] += size_delta
    _, mm, _ = required_margins(state, sizes)
    if mm == 0:
        return MAX_UINT256
    return max(0, available) * UNIT // mm


# ---------------------------------------------------------------------------- on-chain I/O

_ACCOUNT_EVENTS = ("AccountCreated", "CollateralModified", "OrderSettled", "PositionLiquidated")
_ACCOUNT_TOPIC = {event(ABI, name).topic: (1 if name != "OrderSettled" else 2) for name in _ACCOUNT_EVENTS}
_ACCOUNT_TOPIC[event(ABI, "AccountLiquidationAttempt").topic] = 1


class Perps:
    """Adapter for one Synthetix v3 perps market proxy."""

    name = NAME

    def __init__(self, address: str):
        self.address = to_checksum_address(address)
        self.markets: tuple[PerpMarket, ...] = ()

    def topic0s(self) -> list[bytes]:
        return list(_ACCOUNT_TOPIC)

    def accounts_from_logs(self, logs: Iterable[dict[str, Any]]) -> set[int]:
        ids: set[int] = set()
        for entry in logs:
            topics = [bytes(t) for t in entry["topics"]]
            slot = _ACCOUNT_TOPIC.get(topics[0]) if topics else None
            if slot is not None and len(topics) > slot:
                ids.add(int.from_bytes(topics[slot], "big"))
        return ids

    async def load(self, chain: Chain, block: int) -> tuple[PerpMarket, ...]:
        raw = await chain.call(self.address, fn(ABI, "getMarkets").encode(), block)
        try:
            (ids,) = fn(ABI, "getMarkets").decode(raw)
        except Exception as exc:
            raise TransientError(f"{self.address} does not answer like a perps market: {exc}") from exc
        calls = []
        for mid in ids:
            calls += [
                Call(self.address, fn(ABI, "metadata").encode(mid)),
                Call(self.address, fn(ABI, "getFundingParameters").encode(mid)),
                Call(self.address, fn(ABI, "getLiquidationParameters").encode(mid)),
            ]
        results = await chain.multicall(calls, block)
        markets = []
        for k, mid in enumerate(ids):
            try:
                _, symbol = fn(ABI, "metadata").decode(need(results[3 * k], "metadata"))
                skew_scale, velocity = fn(ABI, "getFundingParameters").decode(need(results[3 * k + 1], "funding"))
                liq = fn(ABI, "getLiquidationParameters").decode(need(results[3 * k + 2], "liquidation parameters"))
            except TransientError:
                raise
            except Exception as exc:
                raise TransientError(f"perps market {mid}: undecodable configuration: {exc}") from exc
            markets.append(PerpMarket(int(mid), str(symbol), int(skew_scale), int(velocity), *(int(x) for x in liq)))
        self.markets = tuple(markets)
        return self.markets

    def market_calls(self) -> list[Call]:
        calls = [Call(self.address, fn(ABI, "getKeeperRewardGuards").encode())]
        for m in self.markets:
            calls += [
                Call(self.address, fn(ABI, "indexPrice").encode(m.market_id), allow_failure=True),
                Call(self.address, fn(ABI, "skew").encode(m.market_id)),
            ]
        return calls

    def decode_state(self, results: Sequence[bytes | None], block: int, timestamp: int) -> PerpsState:
        try:
            guards = fn(ABI, "getKeeperRewardGuards").decode(need(results[0], "getKeeperRewardGuards"))
            prices: list[int | None] = []
            skews = []
            for k in range(len(self.markets)):
                raw = results[1 + 2 * k]
                prices.append(word(raw, "indexPrice") if raw is not None else None)
                (skew,) = fn(ABI, "skew").decode(need(results[2 + 2 * k], "skew"))
                skews.append(int(skew))
        except TransientError:
            raise
        except Exception as exc:
            raise TransientError(f"perps {self.address}: undecodable market read: {exc}") from exc
        return PerpsState(block, timestamp, self.markets, tuple(prices), tuple(skews), int(guards[0]), int(guards[2]))

    async def read_accounts(
        self, chain: Chain, ids: Sequence[int], block: int, prices: Sequence[int | None]
    ) -> list[PerpsAccount]:
        """Accounts at `block` in one multicall: collateral, margins, canLiquidate and every
        market's position (a position in a market that cannot price is read as reverted)."""
        per = 4 + len(self.markets)
        calls = []
        for a in ids:
            calls += [
                Call(self.address, fn(ABI, "getCollateralAmount").encode(a, 0)),
                Call(self.address, fn(ABI, "getAvailableMargin").encode(a), allow_failure=True),
                Call(self.address, fn(ABI, "getRequiredMargins").encode(a), allow_failure=True),
                Call(self.address, fn(ABI, "canLiquidate").encode(a), allow_failure=True),
            ]
            calls += [
                Call(self.address, fn(ABI, "getOpenPosition").encode(a, m.market_id), allow_failure=True)
                for m in self.markets
            ]
        results = await chain.multicall(calls, block) if calls else []
        out = []
        for k, a in enumerate(ids):
            r = results[per * k : per * (k + 1)]
            if r[1] is None or r[2] is None or r[3] is None:
                continue  # a market it holds cannot price (stale oracle): keep what the book has
            try:
                collateral = word(r[0], "getCollateralAmount")
                (available,) = fn(ABI, "getAvailableMargin").decode(need(r[1], "getAvailableMargin"))
                im, mm, reward = fn(ABI, "getRequiredMargins").decode(need(r[2], "getRequiredMargins"))
                (can,) = fn(ABI, "canLiquidate").decode(need(r[3], "canLiquidate"))
                # a market that cannot price cannot hold this account's position (margins priced)
                positions = [fn(ABI, "getOpenPosition").decode(x) if x else (0, 0, 0) for x in r[4:]]
            except TransientError:
                raise
            except Exception as exc:
                raise TransientError(f"perps account {a}: undecodable read: {exc}") from exc
            out.append(
                PerpsAccount(
                    user=account_key(a),
                    account_id=int(a),
                    block=block,
                    collateral=collateral,
                    sizes=tuple(int(p[2]) for p in positions),
                    total_pnl=tuple(int(p[0]) for p in positions),
                    accrued_funding=tuple(int(p[1]) for p in positions),
                    available_margin=int(available),
                    required_initial_margin=int(im),
                    required_maintenance_margin=int(mm),
                    max_liquidation_reward=int(reward),
                    can_liquidate=bool(can),
                    prices=tuple(p or 0 for p in prices),
                )
            )
        return out

    # -- writes (unsigned calldata; only the executor signs)
    def encode_modify_collateral(self, account_id: int, amount_delta: int) -> bytes:
        return fn(ABI, "modifyCollateral").encode(account_id, 0, amount_delta)

    def encode_commit_order(self, account_id: int, market_id: int, size_delta: int, acceptable_price: int) -> bytes:
        request = (market_id, account_id, size_delta, 0, acceptable_price, b"keeper".ljust(32, b"\0"), ZERO)
        return fn(ABI, "commitOrder").encode(request)

    def encode_settle_order(self, account_id: int) -> bytes:
        return fn(ABI, "settleOrder").encode(account_id)

    def encode_liquidate(self, account_id: int) -> bytes:
        return fn(ABI, "liquidate").encode(account_id)


ZERO = "0x" + "0" * 40

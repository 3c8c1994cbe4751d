"""Synthetix v3 perps reads: the proxy's events that name accounts, its markets' parameters, one
block's index prices and skews, and accounts with the market's own margin figures
(`getAvailableMargin`, `getRequiredMargins`, `canLiquidate`, `getOpenPosition`), batched through
Multicall3 at one block (I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keeper.errors import TransientError
from keeper.protocols.base import topic_words
from keeper.protocols.synthetix_perps.math import ABI, PerpMarket, PerpsAccount, PerpsState, account_key
from keeper.sources.abi import DECODE_ERRORS, event, fn, need, word
from keeper.sources.chain import Call, Chain

_ACCOUNT_EVENTS = ("AccountCreated", "CollateralModified", "OrderSettled", "PositionLiquidated")
_ACCOUNT_TOPIC = {event(ABI, name).topic: ((1,) if name != "OrderSettled" else (2,)) for name in _ACCOUNT_EVENTS}
_ACCOUNT_TOPIC[event(ABI, "AccountLiquidationAttempt").topic] = (1,)


class PerpsReader:
    """Reads of one Synthetix v3 perps market proxy."""

    def __init__(self, address: str):
        self.address = address
        self.markets: tuple[PerpMarket, ...] = ()

    def topic0s(self) -> list[bytes]:
        return list(_ACCOUNT_TOPIC)

    def accounts_from_logs(self, logs: Iterable[Mapping[str, Any]]) -> set[int]:
        return {int.from_bytes(t, "big") for t in topic_words(logs, _ACCOUNT_TOPIC)}

    async def load(self, chain: Chain, block: int) -> tuple[PerpMarket, ...]:
        raw = await chain.call(self.address, fn(ABI, "getMarkets").encode(), block)
        try:
            (ids,) = fn(ABI, "getMarkets").decode(raw)
        except DECODE_ERRORS as exc:
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
            except DECODE_ERRORS as exc:
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
        except DECODE_ERRORS as exc:
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
            except DECODE_ERRORS as exc:
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

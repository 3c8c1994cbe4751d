"""Aave v3 reads: the Pool's events that name accounts, the reserve list, one block's market state
and accounts' raw balances, batched through Multicall3 at one block (I/O; decoding into the
plain values of keeper.protocols.aave_v3.math)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_utils import to_checksum_address

from keeper.errors import TransientError
from keeper.protocols.aave_v3.math import ZERO_ADDRESS, Market, Position, Reserve, ReserveConfig
from keeper.protocols.base import topic_words
from keeper.risk.guards import FeedRound
from keeper.sources.abi import DECODE_ERRORS, event, fn, need, token_symbol, word
from keeper.sources.chain import Call, Chain

POOL = "AaveV3Pool"
_USER_EVENTS = {
    # event name -> index of the topic holding the position's address
    "Supply": 2,
    "Withdraw": 2,
    "Borrow": 2,
    "Repay": 2,
    "LiquidationCall": 3,
    "ReserveUsedAsCollateralEnabled": 2,
    "ReserveUsedAsCollateralDisabled": 2,
}
_EVENT_TOPIC = {event(POOL, name).topic: (slot,) for name, slot in _USER_EVENTS.items()}


class AaveV3Reader:
    """Reads of one Aave v3 market (a Pool and its AaveOracle)."""

    def __init__(self, pool: str, oracle: str):
        self.pool = to_checksum_address(pool)
        self.oracle = to_checksum_address(oracle)
        self.reserves: tuple[Reserve, ...] = ()

    # -- discovery
    def topic0s(self) -> list[bytes]:
        return list(_EVENT_TOPIC)

    def users_from_logs(self, logs: Iterable[Mapping[str, Any]]) -> set[str]:
        return {to_checksum_address(t[-20:]) for t in topic_words(logs, _EVENT_TOPIC)}

    # -- reads
    async def load_reserves(self, chain: Chain, block: int) -> tuple[Reserve, ...]:
        raw = await chain.call(self.pool, fn(POOL, "getReservesList").encode(), block)
        (assets,) = fn(POOL, "getReservesList").decode(raw)
        get_data, symbol, source = (
            fn(POOL, "getReserveData"),
            fn("ERC20", "symbol"),
            fn("AaveOracle", "getSourceOfAsset"),
        )
        calls: list[Call] = []
        for a in assets:
            calls.append(Call(self.pool, get_data.encode(a)))
            calls.append(Call(a, symbol.encode(), allow_failure=True))
            calls.append(Call(self.oracle, source.encode(a), allow_failure=True))
        results = await chain.multicall(calls, block)
        reserves = []
        for k, a in enumerate(assets):
            (d,) = get_data.decode(need(results[3 * k], "getReserveData"))
            src_raw = results[3 * k + 2]
            src = to_checksum_address(source.decode(src_raw)[0]) if src_raw else ""
            sym = token_symbol(results[3 * k + 1], a)
            reserves.append(
                Reserve(
                    to_checksum_address(a),
                    int(d[7]),
                    to_checksum_address(d[8]),
                    to_checksum_address(d[10]),
                    sym,
                    "" if src == ZERO_ADDRESS else src,
                )
            )
        self.reserves = tuple(reserves)
        return self.reserves

    def market_calls(self) -> list[Call]:
        assets = [r.asset for r in self.reserves]
        calls = [Call(self.oracle, fn("AaveOracle", "getAssetsPrices").encode(assets))]
        income, debt, conf = (
            fn(POOL, n) for n in ("getReserveNormalizedIncome", "getReserveNormalizedVariableDebt", "getConfiguration")
        )
        for a in assets:
            calls += [
                Call(self.pool, income.encode(a)),
                Call(self.pool, debt.encode(a)),
                Call(self.pool, conf.encode(a)),
            ]
        latest = fn("AggregatorV3", "latestRoundData")
        calls += [Call(r.price_source, latest.encode(), allow_failure=True) for r in self.reserves if r.price_source]
        return calls

    def decode_market(self, results: Sequence[bytes | None], block: int, timestamp: int) -> Market:
        (prices,) = fn("AaveOracle", "getAssetsPrices").decode(need(results[0], "getAssetsPrices"))
        n = len(self.reserves)
        if len(prices) != n:
            raise TransientError(f"oracle returned {len(prices)} prices for {n} reserves")
        values = [word(results[1 + k], "market read") for k in range(3 * n)]
        latest = fn("AggregatorV3", "latestRoundData")
        rounds = iter(results[1 + 3 * n :])
        feeds: list[FeedRound | None] = []
        for r in self.reserves:
            raw = next(rounds) if r.price_source else None
            try:
                feeds.append(FeedRound(*(int(x) for x in latest.decode(raw))) if raw else None)
            except DECODE_ERRORS:  # a source that answers something else than latestRoundData
                feeds.append(None)
        return Market(
            block=block,
            timestamp=timestamp,
            reserves=self.reserves,
            configs=tuple(ReserveConfig.from_bitmap(values[3 * i + 2]) for i in range(n)),
            prices_base=tuple(int(p) for p in prices),
            income_ray=tuple(values[3 * i] for i in range(n)),
            debt_index_ray=tuple(values[3 * i + 1] for i in range(n)),
            feeds=tuple(feeds),
        )

    async def read_positions(
        self, chain: Chain, users: Sequence[str], block: int, full: Iterable[str] = ()
    ) -> list[Position]:
        """Positions at `block`, in two batched reads: every user's configuration bitmap and
        e-mode, then the scaled balances of only the reserves the bitmap says are in use
        (Aave Ethereum lists ~60 reserves; a typical account uses 2-3). Users in `full` get every
        reserve read, so wallet top-ups know about aTokens not enabled as collateral."""
        full = set(full)
        config, emode, scaled = (
            fn(POOL, "getUserConfiguration"),
            fn(POOL, "getUserEMode"),
            fn("ScaledBalanceToken", "scaledBalanceOf"),
        )
        head = await chain.multicall([Call(self.pool, f.encode(u)) for u in users for f in (config, emode)], block)
        words = [word(r, "getUserConfiguration/getUserEMode") for r in head]
        plan: list[tuple[int, int, bool]] = []  # (user index, reserve index, is debt token)
        calls: list[Call] = []
        for k, user in enumerate(users):
            bits = words[2 * k]
            for i, r in enumerate(self.reserves):
                if user in full or (bits >> (2 * i + 1)) & 1:
                    plan.append((k, i, False))
                    calls.append(Call(r.a_token, scaled.encode(user)))
                if user in full or (bits >> (2 * i)) & 1:
                    plan.append((k, i, True))
                    calls.append(Call(r.variable_debt_token, scaled.encode(user)))
        results = await chain.multicall(calls, block) if calls else []
        n = len(self.reserves)
        coll = [[0] * n for _ in users]
        debt = [[0] * n for _ in users]
        for (k, i, is_debt), reply in zip(plan, results, strict=True):
            (debt if is_debt else coll)[k][i] = word(reply, "scaledBalanceOf")
        return [
            Position(to_checksum_address(u), block, words[2 * k], words[2 * k + 1], tuple(coll[k]), tuple(debt[k]))
            for k, u in enumerate(users)
        ]

"""Aave v3 reads: the Pool's revision, the events that name accounts, the reserve list, one
block's market state (with the e-mode categories in use) and accounts' raw balances, batched
through Multicall3 at one block (I/O; decoding into the plain values of .math)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from eth_utils import to_checksum_address

from keeper.errors import TransientError
from keeper.protocols.aave_v3.math import ZERO_ADDRESS, EMode, Market, Position, Reserve, ReserveConfig, StableDebt
from keeper.protocols.aave_v3.versions import VERSIONS, Version, version_of
from keeper.protocols.base import topic_words
from keeper.risk.guards import FeedRound
from keeper.sources.abi import DECODE_ERRORS, event, fn, need, token_symbol, word
from keeper.sources.chain import Call, Chain

log = logging.getLogger(__name__)
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
_LATEST = {v.name: v for v in VERSIONS}["3.7"]


class AaveV3Reader:
    """Reads of one Aave v3 market (a Pool and its AaveOracle)."""

    def __init__(self, pool: str, oracle: str):
        self.pool = to_checksum_address(pool)
        self.oracle = to_checksum_address(oracle)
        self.reserves: tuple[Reserve, ...] = ()
        self.revision: int | None = None
        """POOL_REVISION (None: the Pool does not answer it)."""
        self.version: Version | None = None
        """The version the revision names; None when keeper does not know it (act on nothing)."""
        self.emode_ids: tuple[int, ...] = ()
        """E-mode categories read every block (those accounts were seen in)."""
        self.emode_sources: dict[int, str] = {}
        self._column_of_id: dict[int, int] = {}
        self._layout: tuple[tuple[int, ...], dict[int, str]] = ((), {})
        """The e-mode part of the last `market_calls`, which `decode_market` reads back."""

    @property
    def rules(self) -> Version:
        """The rules the integer math follows: the market's version, or for an unknown revision
        the nearest known one (reporting only: nothing is acted on)."""
        if self.version is not None:
            return self.version
        return _LATEST if (self.revision or 0) > _LATEST.revisions[-1] else {v.name: v for v in VERSIONS}["3.3"]

    # -- discovery
    def topic0s(self) -> list[bytes]:
        return list(_EVENT_TOPIC)

    def users_from_logs(self, logs: Iterable[Mapping[str, Any]]) -> set[str]:
        return {to_checksum_address(t[-20:]) for t in topic_words(logs, _EVENT_TOPIC)}

    # -- reads
    async def load_reserves(self, chain: Chain, block: int) -> tuple[Reserve, ...]:
        head = await chain.multicall(
            [Call(self.pool, fn(POOL, "getReservesList").encode()), Call(self.pool, fn(POOL, "POOL_REVISION").encode(),
                                                                         allow_failure=True)],
            block,
        )  # fmt: skip
        (assets,) = fn(POOL, "getReservesList").decode(need(head[0], "getReservesList"))
        self.revision = _revision(head[1])
        self.version = version_of(self.revision) if self.revision is not None else None
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
            stable = to_checksum_address(d[9])
            reserves.append(
                Reserve(
                    asset=to_checksum_address(a),
                    id=int(d[7]),
                    a_token=to_checksum_address(d[8]),
                    variable_debt_token=to_checksum_address(d[10]),
                    symbol=token_symbol(results[3 * k + 1], a),
                    price_source="" if src == ZERO_ADDRESS else src,
                    stable_debt_token="" if stable == ZERO_ADDRESS or not self.rules.stable_debt else stable,
                )
            )
        self.reserves = tuple(await self._feeds(chain, reserves, block))
        self._column_of_id = {r.id: i for i, r in enumerate(self.reserves)}
        return self.reserves

    async def _feeds(self, chain: Chain, reserves: list[Reserve], block: int) -> list[Reserve]:
        """Per price source, the Chainlink round that dates its price: the source's own
        latestRoundData, else the feed a CAPO or synchronicity adapter wraps; '' when neither
        (the price's age cannot be judged: `notes` says so and load alerts once)."""
        probes = [fn("AggregatorV3", "latestRoundData")] + [fn("PriceCapAdapter", n) for n in _WRAPPED]
        sources = [r for r in reserves if r.price_source]
        calls = [Call(r.price_source, f.encode(), allow_failure=True) for r in sources for f in probes]
        results = iter(await chain.multicall(calls, block) if calls else [])
        found: dict[str, tuple[str, str]] = {}
        for r in sources:
            replies = [next(results) for _ in probes]
            if _round(replies[0]) is not None:
                found[r.asset] = (r.price_source, "")
                continue
            wrapped = next(((n, a) for n, raw in zip(_WRAPPED, replies[1:], strict=True) if (a := _address(raw))), None)
            if wrapped:
                found[r.asset] = (wrapped[1], f"price adapter {r.price_source}: age from its {wrapped[0]} {wrapped[1]}")
        # a wrapped feed must itself answer latestRoundData, or the price's age is unknown
        wrapped_feeds = [(asset, f) for asset, (f, note) in found.items() if note]
        checks = [Call(f, probes[0].encode(), allow_failure=True) for _, f in wrapped_feeds]
        replies_ = await chain.multicall(checks, block) if checks else []
        for (asset, _), raw in zip(wrapped_feeds, replies_, strict=True):
            if _round(raw) is None:
                del found[asset]
        out = []
        for r in reserves:
            feed, how = found.get(r.asset, ("", ""))
            out.append(replace(r, feed=feed, feed_note=how))
        return out

    def market_calls(self) -> list[Call]:
        assets = [r.asset for r in self.reserves]
        calls = [Call(self.oracle, fn("AaveOracle", "getAssetsPrices").encode(assets))]
        income, debt, data, supply = (
            fn(POOL, "getReserveNormalizedIncome"),
            fn(POOL, "getReserveNormalizedVariableDebt"),
            fn(POOL, "getReserveData"),
            fn("ScaledBalanceToken", "scaledTotalSupply"),
        )
        for r in self.reserves:
            calls += [
                Call(self.pool, income.encode(r.asset)),
                Call(self.pool, debt.encode(r.asset)),
                Call(self.pool, data.encode(r.asset)),
                Call(r.a_token, supply.encode()),
            ]
        if self.rules.grace_period:
            grace = fn(POOL, "getLiquidationGracePeriod")
            calls += [Call(self.pool, grace.encode(r.asset), allow_failure=True) for r in self.reserves]
        calls += self._emode_calls(self.emode_ids)
        latest = fn("AggregatorV3", "latestRoundData")
        calls += [Call(r.feed, latest.encode(), allow_failure=True) for r in self.reserves if r.feed]
        self._layout = (self.emode_ids, dict(self.emode_sources))
        return calls

    def _emode_calls(self, ids: Sequence[int]) -> list[Call]:
        sources = self.emode_sources
        calls = []
        for e in ids:
            calls.append(Call(self.pool, fn(POOL, "getEModeCategoryData").encode(e)))
            if self.rules.emode_bitmaps:
                calls.append(Call(self.pool, fn(POOL, "getEModeCategoryCollateralBitmap").encode(e)))
            elif sources.get(e):
                calls.append(Call(self.oracle, fn("AaveOracle", "getAssetPrice").encode(sources[e])))
        return calls

    def decode_market(self, results: Sequence[bytes | None], block: int, timestamp: int) -> Market:
        (prices,) = fn("AaveOracle", "getAssetsPrices").decode(need(results[0], "getAssetsPrices"))
        n = len(self.reserves)
        if len(prices) != n:
            raise TransientError(f"oracle returned {len(prices)} prices for {n} reserves")
        data_fn = fn(POOL, "getReserveData")
        income, debt, configs, supplied = [], [], [], []
        for k in range(n):
            income.append(word(results[1 + 4 * k], "getReserveNormalizedIncome"))
            debt.append(word(results[2 + 4 * k], "getReserveNormalizedVariableDebt"))
            (d,) = data_fn.decode(need(results[3 + 4 * k], "getReserveData"))
            configs.append(ReserveConfig.from_bitmap(int(d[0][0])))
            scaled = word(results[4 + 4 * k], "scaledTotalSupply") + int(d[12])
            supplied.append(scaled * income[-1] // 10**27)
        rest = iter(results[1 + 4 * n :])
        grace: tuple[int, ...] = ()
        if self.rules.grace_period:
            grace = tuple(int.from_bytes(raw[-32:], "big") if raw else 0 for raw in (next(rest) for _ in range(n)))
        ids, sources = self._layout
        emodes = self._decode_emodes(ids, sources, rest, configs)
        feeds = [_round(next(rest)) if r.feed else None for r in self.reserves]
        return Market(
            block=block,
            timestamp=timestamp,
            reserves=self.reserves,
            configs=tuple(configs),
            prices_base=tuple(int(p) for p in prices),
            income_ray=tuple(income),
            debt_index_ray=tuple(debt),
            feeds=tuple(feeds),
            version=self.rules,
            emodes=emodes,
            grace_until=grace,
            supplied=tuple(supplied),
        )

    def _decode_emodes(
        self, ids: Sequence[int], sources: Mapping[int, str], rest: Any, configs: Sequence[ReserveConfig]
    ) -> tuple[EMode, ...]:
        out = []
        for e in ids:
            (ltv, lt, lb, _source, _label) = fn(POOL, "getEModeCategoryData").decode(
                need(next(rest), "getEModeCategoryData")
            )[0]
            price = 0
            if self.rules.emode_bitmaps:
                bitmap = word(next(rest), "getEModeCategoryCollateralBitmap")
                members = frozenset(
                    self._column_of_id[b] for b in range(128) if bitmap >> b & 1 and b in self._column_of_id
                )
            else:
                members = frozenset(i for i, c in enumerate(configs) if c.emode_category == e)
                if sources.get(e):
                    price = word(next(rest), "getAssetPrice")
            out.append(EMode(e, int(ltv), int(lt), int(lb), members, price))
        return tuple(out)

    async def load_emodes(self, chain: Chain, ids: Iterable[int], market: Market) -> tuple[EMode, ...]:
        """Read categories first seen now; from the next block they are part of `market_calls`."""
        new = sorted(set(ids) - set(self.emode_ids) - {0})
        if not new:
            return ()
        if not self.rules.emode_bitmaps:
            raw = await chain.multicall([Call(self.pool, fn(POOL, "getEModeCategoryData").encode(e)) for e in new],
                                        market.block)  # fmt: skip
            for e, r in zip(new, raw, strict=True):
                source = to_checksum_address(fn(POOL, "getEModeCategoryData").decode(need(r, "e-mode"))[0][3])
                self.emode_sources[e] = "" if source == ZERO_ADDRESS else source
        results = await chain.multicall(self._emode_calls(new), market.block)
        self.emode_ids = tuple(sorted({*self.emode_ids, *new}))
        return self._decode_emodes(new, self.emode_sources, iter(results), market.configs)

    async def read_positions(
        self, chain: Chain, users: Sequence[str], block: int, full: Iterable[str] = ()
    ) -> list[Position]:
        """Positions at `block`, in two batched reads: every user's configuration bitmap and
        e-mode, then the balances of only the reserves the bitmap says are in use (Aave Ethereum
        lists ~60 reserves; a typical account uses 2-3). Users in `full` get every reserve read,
        so wallet top-ups know about aTokens not enabled as collateral."""
        full = set(full)
        config, emode, scaled = (
            fn(POOL, "getUserConfiguration"),
            fn(POOL, "getUserEMode"),
            fn("ScaledBalanceToken", "scaledBalanceOf"),
        )
        head = await chain.multicall([Call(self.pool, f.encode(u)) for u in users for f in (config, emode)], block)
        words = [word(r, "getUserConfiguration/getUserEMode") for r in head]
        bits = [self._columns(words[2 * k]) for k in range(len(users))]
        stable_fns = [
            fn("StableDebtToken", n) for n in ("principalBalanceOf", "getUserStableRate", "getUserLastUpdated")
        ]
        plan: list[tuple[int, int, str]] = []  # (user index, reserve index, what)
        calls: list[Call] = []
        for k, user in enumerate(users):
            for i, r in enumerate(self.reserves):
                if user in full or (bits[k] >> (2 * i + 1)) & 1:
                    plan.append((k, i, "coll"))
                    calls.append(Call(r.a_token, scaled.encode(user)))
                if user in full or (bits[k] >> (2 * i)) & 1:
                    plan.append((k, i, "debt"))
                    calls.append(Call(r.variable_debt_token, scaled.encode(user)))
                    if r.stable_debt_token:
                        plan.append((k, i, "stable"))
                        calls += [Call(r.stable_debt_token, f.encode(user)) for f in stable_fns]
        results = iter(await chain.multicall(calls, block) if calls else [])
        n = len(self.reserves)
        coll = [[0] * n for _ in users]
        debt = [[0] * n for _ in users]
        stable: list[list[StableDebt | None]] = [[None] * n for _ in users]
        for k, i, what in plan:
            if what == "stable":
                principal, rate, updated = (word(next(results), "stable debt") for _ in range(3))
                stable[k][i] = StableDebt(principal, rate, updated) if principal else None
            else:
                (debt if what == "debt" else coll)[k][i] = word(next(results), "scaledBalanceOf")
        return [
            Position(
                to_checksum_address(u), block, bits[k], words[2 * k + 1], tuple(coll[k]), tuple(debt[k]),
                tuple(stable[k]) if any(stable[k]) else (),
            )
            for k, u in enumerate(users)
        ]  # fmt: skip

    def _columns(self, raw: int) -> int:
        """A user configuration bitmap (bit pairs by reserve id) in column order."""
        out = 0
        for rid, i in self._column_of_id.items():
            pair = (raw >> (2 * rid)) & 3
            if pair:
                out |= pair << (2 * i)
        return out


def _revision(raw: bytes | None) -> int | None:
    if not raw or len(raw) < 32:
        return None
    return int.from_bytes(raw[:32], "big")


_WRAPPED = ("ASSET_TO_USD_AGGREGATOR", "BASE_TO_USD_AGGREGATOR")
"""Views that name the Chainlink feed an Aave price adapter wraps (CAPO stable, CAPO LST)."""


def _round(raw: bytes | None) -> FeedRound | None:
    try:
        return FeedRound(*(int(x) for x in fn("AggregatorV3", "latestRoundData").decode(raw))) if raw else None
    except DECODE_ERRORS:
        return None


def _address(raw: bytes | None) -> str:
    if not raw or len(raw) != 32 or any(raw[:12]):
        return ""
    a = to_checksum_address(raw[12:])
    return "" if a == ZERO_ADDRESS else a

"""Compound v3 reads: the Comet proxy's events that name accounts, the market's immutables and
asset list, one block's state and accounts' balances, batched through Multicall3 at one block
(I/O; decoding into the plain values of keeper.protocols.comet.math). Reads use the deployed
proxy's interface (`abis/Comet.json`: Comet + CometExt + the public storage getters)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from keeper.errors import TransientError
from keeper.protocols.base import topic_words
from keeper.protocols.comet.math import ABI, RATE_PARAMS, AssetInfo, CometMarket, CometPosition
from keeper.risk.guards import FeedRound
from keeper.sources.abi import DECODE_ERRORS, event, fn, need, token_symbol, word
from keeper.sources.chain import Call, Chain

_USER_EVENTS = {
    # event name -> topic indices holding an account whose position changed
    "Supply": (2,),
    "Withdraw": (1,),
    "Transfer": (1, 2),
    "SupplyCollateral": (2,),
    "WithdrawCollateral": (1,),
    "TransferCollateral": (1, 2),
    "AbsorbDebt": (2,),
    "AbsorbCollateral": (2,),
}
_EVENT_TOPIC = {event(ABI, name).topic: slots for name, slots in _USER_EVENTS.items()}
ZERO_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True)
class CometStatic:
    """What is fixed per deployment (immutables), read once at start-up."""

    base_token: str
    base_symbol: str
    base_price_feed: str
    base_scale: int
    target_reserves: int
    store_front_price_factor: int
    base_borrow_min: int
    num_assets: int
    symbols: tuple[str, ...]


class CometReader:
    """Reads of one Comet market (the proxy address)."""

    def __init__(self, address: str):
        self.address = to_checksum_address(address)
        self.static: CometStatic | None = None
        self.assets: tuple[AssetInfo, ...] = ()
        """getAssetInfo of every collateral, as of the last market read."""

    # -- discovery
    def topic0s(self) -> list[bytes]:
        return list(_EVENT_TOPIC)

    def users_from_logs(self, logs: Iterable[Mapping[str, Any]]) -> set[str]:
        users = {str(to_checksum_address(t[-20:])) for t in topic_words(logs, _EVENT_TOPIC)}
        return users - {ZERO_ADDRESS, self.address}

    # -- reads
    async def load(self, chain: Chain, block: int) -> CometStatic:
        names = [
            "baseToken",
            "baseTokenPriceFeed",
            "baseScale",
            "targetReserves",
            "storeFrontPriceFactor",
            "baseBorrowMin",
            "numAssets",
        ]
        results = await chain.multicall([Call(self.address, fn(ABI, n).encode()) for n in names], block)
        try:
            base, feed = (
                to_checksum_address(fn(ABI, n).decode(need(r, n))[0])
                for n, r in zip(names[:2], results[:2], strict=True)
            )
        except TransientError:
            raise
        except DECODE_ERRORS as exc:
            raise TransientError(f"{self.address} does not answer like a Comet market: {exc}") from exc
        scale, target, store_front, borrow_min, n = (word(r, "Comet immutable") for r in results[2:])
        infos = await chain.multicall([Call(self.address, fn(ABI, "getAssetInfo").encode(i)) for i in range(n)], block)
        assets = [AssetInfo.decode(fn(ABI, "getAssetInfo").decode(need(r, "getAssetInfo"))[0]) for r in infos]
        symbol = fn("ERC20", "symbol")
        tokens = [base] + [a.asset for a in assets]
        syms = await chain.multicall([Call(t, symbol.encode(), allow_failure=True) for t in tokens], block)
        names_out = [token_symbol(raw, t) for t, raw in zip(tokens, syms, strict=True)]
        self.static = CometStatic(
            base, names_out[0], feed, scale, target, store_front, borrow_min, n, tuple(names_out[1:])
        )
        self.assets = tuple(assets)
        return self.static

    def market_calls(self) -> list[Call]:
        s = self._need_static()
        latest = fn("AggregatorV3", "latestRoundData")
        calls = [
            Call(self.address, fn(ABI, "totalsBasic").encode()),
            Call(self.address, fn(ABI, "getReserves").encode()),
            Call(self.address, fn(ABI, "numAssets").encode()),
            Call(s.base_price_feed, latest.encode(), allow_failure=True),
        ]
        calls += [Call(self.address, fn(ABI, name).encode()) for name in RATE_PARAMS]
        for i, a in enumerate(self.assets):
            calls += [
                Call(self.address, fn(ABI, "getAssetInfo").encode(i)),
                Call(a.price_feed, latest.encode(), allow_failure=True),
                Call(self.address, fn(ABI, "getCollateralReserves").encode(a.asset)),
                Call(self.address, fn(ABI, "totalsCollateral").encode(a.asset)),
            ]
        return calls

    def decode_market(self, results: Sequence[bytes | None], block: int, timestamp: int) -> CometMarket:
        s = self._need_static()
        try:
            (totals,) = fn(ABI, "totalsBasic").decode(need(results[0], "totalsBasic"))
            (reserves,) = fn(ABI, "getReserves").decode(need(results[1], "getReserves"))
            n = word(results[2], "numAssets")
            if n != s.num_assets:
                self.static = None
                raise TransientError(f"Comet {self.address} now lists {n} assets (was {s.num_assets}): reloading")
            latest = fn("AggregatorV3", "latestRoundData")
            feeds = [self._round(latest, results[3])]
            rates = tuple(word(results[4 + k], name) for k, name in enumerate(RATE_PARAMS))
            assets, colls, totals_c = [], [], []
            for i in range(n):
                k = 4 + len(RATE_PARAMS) + 4 * i
                assets.append(AssetInfo.decode(fn(ABI, "getAssetInfo").decode(need(results[k], "getAssetInfo"))[0]))
                feeds.append(self._round(latest, results[k + 1]))
                colls.append(word(results[k + 2], "getCollateralReserves"))
                totals_c.append(int(fn(ABI, "totalsCollateral").decode(need(results[k + 3], "totalsCollateral"))[0]))
        except TransientError:
            raise
        except DECODE_ERRORS as exc:  # eth-abi decoding errors of a garbage reply
            raise TransientError(f"Comet {self.address}: undecodable market read: {exc}") from exc
        self.assets = tuple(assets)
        if any(f is None for f in feeds):
            raise TransientError(f"Comet {self.address}: a price feed did not answer latestRoundData")
        prices = [f.answer if f is not None else 0 for f in feeds]
        return CometMarket(
            block=block,
            timestamp=timestamp,
            base_token=s.base_token,
            base_symbol=s.base_symbol,
            base_price_feed=s.base_price_feed,
            base_scale=s.base_scale,
            assets=tuple(assets),
            symbols=s.symbols,
            base_price=prices[0],
            prices=tuple(prices[1:]),
            base_supply_index=int(totals[0]),
            base_borrow_index=int(totals[1]),
            pause_flags=int(totals[7]),
            reserves=int(reserves),
            target_reserves=s.target_reserves,
            store_front_price_factor=s.store_front_price_factor,
            base_borrow_min=s.base_borrow_min,
            collateral_reserves=tuple(colls),
            total_collateral=tuple(totals_c),
            feeds=tuple(feeds),
            total_supply_base=int(totals[4]),
            total_borrow_base=int(totals[5]),
            last_accrual_time=int(totals[6]),
            rates=rates,
        )

    @staticmethod
    def _round(latest: Any, raw: bytes | None) -> FeedRound | None:
        if raw is None:
            return None
        return FeedRound(*(int(x) for x in latest.decode(raw)))

    async def read_positions(
        self, chain: Chain, users: Sequence[str], block: int, full: Iterable[str] = ()
    ) -> list[CometPosition]:
        """Positions at `block` in two batched reads: userBasic and isLiquidatable of every user,
        then userCollateral of the assets its assets-in bits name (all assets for users in `full`)."""
        full = set(full)
        basic, coll, liq = fn(ABI, "userBasic"), fn(ABI, "userCollateral"), fn(ABI, "isLiquidatable")
        heads = await chain.multicall(
            [Call(self.address, f.encode(u), allow_failure=f is liq) for u in users for f in (basic, liq)], block
        )
        try:
            rows = [basic.decode(need(r, "userBasic")) for r in heads[0::2]]
            flags = [bool(liq.decode(r)[0]) if r else None for r in heads[1::2]]
        except TransientError:
            raise
        except DECODE_ERRORS as exc:
            raise TransientError(f"Comet {self.address}: undecodable userBasic: {exc}") from exc
        # assetsIn holds collaterals 0-15; CometWithExtendedAssetList keeps 16-23 in _reserved
        bits = [int(r[3]) | int(r[4]) << 16 for r in rows]
        plan: list[tuple[int, int]] = []
        calls: list[Call] = []
        for k, user in enumerate(users):
            assets_in = bits[k]
            for i, a in enumerate(self.assets):
                if user in full or (assets_in >> i) & 1:
                    plan.append((k, i))
                    calls.append(Call(self.address, coll.encode(user, a.asset)))
        results = await chain.multicall(calls, block) if calls else []
        balances = [[0] * len(self.assets) for _ in users]
        for (k, i), reply in zip(plan, results, strict=True):
            balances[k][i] = word(reply, "userCollateral")
        return [
            CometPosition(to_checksum_address(u), block, int(rows[k][0]), bits[k], tuple(balances[k]), flags[k])
            for k, u in enumerate(users)
        ]

    def _need_static(self) -> CometStatic:
        if self.static is None:
            raise TransientError(f"Comet {self.address}: market layout not loaded")
        return self.static

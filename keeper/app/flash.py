"""The flash path's reads at a block (I/O, beside the loop's other reads): for a market whose
liquidations may go through the flash liquidator, the sales its candidates would make are quoted
on Uniswap v3 (QuoterV2, one multicall) and the lenders of each debt asset are read (Uniswap v3
pools holding it, and the market's own flash loans), so the planner can compare sizes exactly."""

from __future__ import annotations

import logging
from typing import Any, cast

from eth_abi import decode
from eth_utils import to_checksum_address

from keeper.app.watch import Watch
from keeper.book import Snapshot
from keeper.protocols.base import DeleverageRules, FlashRules
from keeper.settings import FlashSettings, ProtectSettings
from keeper.sources.abi import DECODE_ERRORS, fn
from keeper.sources.chain import Call, Chain, Head
from keeper.sources.uniswap import Uniswap
from keeper.strategy.flash import FlashContext, Lender

log = logging.getLogger("keeper")


class FlashReads:
    def __init__(self, settings: FlashSettings, protect: ProtectSettings):
        self.settings = settings
        self.protect = protect
        self.deleverage = bool(protect.deleverager)
        used = settings.funding != "wallet" or self.deleverage
        self.dex = Uniswap(settings.factory, settings.quoter, settings.fees) if used else None

    async def context(
        self, chain: Chain, head: Head, w: Watch, snap: Snapshot, busy: frozenset[tuple[str, str]] = frozenset()
    ) -> FlashContext | None:
        """Quotes and lenders for this market's flash liquidation candidates and for the
        deleverage of its protected positions (None: nothing to quote)."""
        fs = self.settings
        caps = w.adapter.capabilities
        if self.dex is None or w.book is None or not (caps.flash or caps.deleverage):
            return None
        market = cast(FlashRules, w.adapter)
        protected = w.adapter.protected_accounts()
        asks = []
        if caps.flash and fs.funding != "wallet":
            candidates = w.adapter.liquidation_candidates(snap, w.book.positions, set(protected))
            asks = market.flash_asks(candidates, fs) if candidates else []
        if self.deleverage and caps.deleverage:
            for account in protected:
                if (pos := w.book.positions.get(account)) is not None:
                    ps = w.adapter.protect_settings(self.protect.for_account(account))
                    asks += cast(DeleverageRules, w.adapter).deleverage_asks([pos], ps)
        if not asks:
            return None
        debts = sorted({a.token_out.lower() for a in asks})
        curves = await self.dex.curves(chain, asks, head.number, fs.quote_points)
        lenders: dict[str, list[Lender]] = {}
        if fs.source in ("auto", "uniswap"):
            await self.dex.find_pools(chain, [(d, t) for d in debts for t in w.adapter.tokens], head.number)
            lenders = await self.dex.lenders(chain, debts, head.number)
        if fs.morpho and fs.source in ("auto", "morpho"):
            lenders = await self._morpho(chain, debts, lenders, head.number)
        if fs.source in ("auto", "aave"):
            own = [(t, lender, call) for t, lender, call in market.flash_sources() if t.lower() in debts]
            raw = await chain.multicall([call for _, _, call in own], head.number) if own else []
            for (token, lender, _), r in zip(own, raw, strict=True):
                try:
                    available = int(decode(["uint256"], r)[0]) if r else 0
                except DECODE_ERRORS:
                    continue
                lenders.setdefault(token.lower(), []).append(
                    Lender(lender.source, lender.address, lender.fee_ppm, available)
                )
        log.debug("%s: sale curves of %d pairs for %d liquidations, lenders of %d assets", w.label, len(curves),
                  len(asks), len(lenders))  # fmt: skip
        return FlashContext(fs.liquidator, curves, lenders, fs.slippage_bps, busy)

    async def _morpho(
        self, chain: Chain, tokens: list[str], lenders: dict[str, list[Lender]], block: int
    ) -> dict[str, list[Lender]]:
        """Morpho Blue lends, for free, what it holds of each token."""
        balance, morpho = fn("ERC20", "balanceOf"), self.settings.morpho
        raw = await chain.multicall([Call(to_checksum_address(t), balance.encode(morpho), True) for t in tokens], block)
        out = {k: list(v) for k, v in lenders.items()}
        for token, r in zip(tokens, raw, strict=True):
            try:
                held = int(decode(["uint256"], r)[0]) if r else 0
            except DECODE_ERRORS:
                continue
            if held:
                out.setdefault(token.lower(), []).append(Lender("morpho", morpho, 0, held))
        return out


def sold_pairs(w: Watch, actions: list[Any]) -> set[tuple[str, str]]:
    """The pairs a market's flash liquidations and deleverages of this block sell on Uniswap v3."""
    if not w.adapter.capabilities.flash:
        return set()
    return cast(FlashRules, w.adapter).flash_pairs(actions)

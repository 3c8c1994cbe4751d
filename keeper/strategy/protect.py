"""Protect: the exact amount to repay or supply that brings a watched account to its target
health factor, on Aave v3 or Compound v3. Pure: same inputs, same action.

Each protocol lists its levers (repay this debt asset, supply that collateral, with the most the
wallet and the protocol allow); one search finds, per lever, the smallest amount whose health
factor, computed with the protocol's integer math, reaches the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keeper.config import ProtectSettings
from keeper.protocols import aave_v3, comet, perps
from keeper.strategy.actions import AddMargin, Protect, ReducePosition

MAX_UINT256 = 2**256 - 1
WAD = 10**18


@dataclass(frozen=True)
class Lever:
    kind: str
    """'repay' or 'supply'."""
    asset: str
    symbol: str
    cap: int
    """Most the wallet (and the protocol: debt, supply cap) allows, token units."""
    price: int
    unit: int
    hf_after: Callable[[int], int]
    """amount -> health factor (WAD) after the action; grows with the amount."""


def smallest_amount(hf_after: Callable[[int], int], cap: int, target_wad: int) -> tuple[int, int]:
    """Smallest amount in [0, cap] whose resulting HF >= target (HF grows with the amount);
    `cap` itself when even that falls short. Returns (amount, hf_wad_after)."""
    hf_cap = hf_after(cap)
    if hf_cap < target_wad:
        return cap, hf_cap
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi) // 2
        if hf_after(mid) >= target_wad:
            hi = mid
        else:
            lo = mid + 1
    return lo, hf_after(lo)


def _fmt_hf(wad: int) -> float:
    return float("inf") if wad == MAX_UINT256 else wad / WAD


def choose(account: str, levers: Sequence[Lever], hf_now: int, settings: ProtectSettings) -> Protect | None:
    """None while the account is above its trigger (or has no debt); otherwise the cheapest
    action in `settings.prefer` order that reaches the target, or the one that gets closest."""
    if hf_now == MAX_UINT256 or hf_now >= int(settings.trigger_hf * WAD):
        return None
    target = int(settings.target_hf * WAD) * (10_000 + settings.target_buffer_bps) // 10_000
    options: list[Protect] = []
    for kind in settings.prefer:
        for lever in levers:
            if lever.kind != kind or lever.cap <= 0:
                continue
            amount, hf_after = smallest_amount(lever.hf_after, lever.cap, target)
            if amount == 0 or hf_after <= hf_now:
                continue
            options.append(
                Protect(
                    kind=kind,  # type: ignore[arg-type]
                    account=account,
                    asset=lever.asset,
                    symbol=lever.symbol,
                    amount=amount,
                    value_base=amount * lever.price // lever.unit,
                    health_before=_fmt_hf(hf_now),
                    health_after=_fmt_hf(hf_after),
                    reaches_target=hf_after >= target,
                )
            )
        reaching = [o for o in options if o.reaches_target and o.kind == kind]
        if reaching:
            return min(reaching, key=lambda o: o.value_base)
    if not options:
        return None
    return max(options, key=lambda o: o.health_after)


def decide_protect(
    pos: aave_v3.Position, market: aave_v3.Market, wallet: Sequence[int], settings: ProtectSettings
) -> Protect | None:
    """Aave v3: repay a variable debt, or supply a reserve that counts as collateral.
    `wallet` is indexed like the market's reserves."""

    def hf(p: aave_v3.Position) -> int:
        return aave_v3.account_data(p, market).health_factor_wad

    levers: list[Lever] = []
    for i, cfg in enumerate(market.configs):
        if not cfg.active or cfg.paused or wallet[i] <= 0:
            continue
        r = market.reserves[i]
        if pos.is_borrowing(i):
            levers.append(
                Lever(
                    "repay",
                    r.asset,
                    r.symbol,
                    min(wallet[i], aave_v3.debt_balance(pos, market, i)),
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i: hf(aave_v3.after_repay(pos, market, i, a)),  # type: ignore[misc]
                )
            )
        usable = pos.is_collateral(i) or (pos.scaled_collateral[i] == 0 and cfg.ltv_bps > 0)
        if not cfg.frozen and cfg.liquidation_threshold_bps and usable:
            levers.append(
                Lever(
                    "supply",
                    r.asset,
                    r.symbol,
                    wallet[i],
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i: hf(aave_v3.after_supply(pos, market, i, a)),  # type: ignore[misc]
                )
            )
    return choose(pos.user, levers, hf(pos), settings)


def decide_protect_comet(
    pos: comet.CometPosition, m: comet.CometMarket, wallet: Sequence[int], settings: ProtectSettings
) -> Protect | None:
    """Compound v3: repay = supply the base asset to the account; supply = supply collateral
    (within its supply cap). `wallet` is indexed by column (base first)."""
    if m.paused(comet.PAUSE_SUPPLY_OFFSET):
        return None
    levers = [
        Lever(
            "repay",
            m.base_token,
            m.base_symbol,
            min(wallet[0], comet.borrow_balance(pos, m)),
            m.base_price,
            m.base_scale,
            lambda a: comet.health_factor_wad(comet.after_supply_base(pos, m, a), m),
        )
    ]
    for i, a in enumerate(m.assets):
        room = max(0, a.supply_cap - m.total_collateral[i])
        if a.liquidate_collateral_factor == 0:
            continue
        levers.append(
            Lever(
                "supply",
                a.asset,
                m.symbols[i],
                min(wallet[i + 1], room),
                m.prices[i],
                a.scale,
                lambda x, i=i: comet.health_factor_wad(comet.after_supply_collateral(pos, m, i, x), m),  # type: ignore[misc]
            )
        )
    return choose(pos.user, levers, comet.health_factor_wad(pos, m), settings)


def decide_protect_perps(
    acct: perps.PerpsAccount,
    state: perps.PerpsState,
    wallet_usd: int,
    settings: ProtectSettings,
    prefer: Sequence[str],
    slippage_bps: int,
) -> AddMargin | ReducePosition | None:
    """Synthetix v3 perps: add snxUSD margin to reach the target margin ratio, or reduce a
    position by the smallest size that does, in `prefer` order ('add_margin', 'reduce'); the
    option that gets closest when none reaches the target. Figures are the market's own
    (getAvailableMargin, getRequiredMargins) and Synthetix's margin and fill-price math."""
    now = acct.margin_ratio_wad
    if now == MAX_UINT256 or now >= int(settings.trigger_hf * WAD):
        return None
    target = int(settings.target_hf * WAD) * (10_000 + settings.target_buffer_bps) // 10_000
    required = acct.required_maintenance_margin
    options: list[AddMargin | ReducePosition] = []
    for kind in prefer:
        if kind == "add_margin" and wallet_usd > 0:
            need = -(-(target * required) // WAD) - acct.available_margin
            amount = min(max(need, 0), wallet_usd)
            if amount > 0:
                after = (acct.available_margin + amount) * WAD // required
                options.append(
                    AddMargin(acct.user, acct.account_id, amount, now / WAD, _fmt_hf(after), after >= target)
                )
        elif kind == "reduce":
            for col, size in enumerate(acct.sizes):
                price = state.prices[col]
                if size == 0 or not price:
                    continue
                sign = 1 if size > 0 else -1

                def ratio(k: int, col: int = col, sign: int = sign) -> int:
                    return perps.margin_ratio_after_reduce(acct, state, col, -sign * k)

                k, after = smallest_amount(ratio, abs(size), target)
                if k == 0:
                    continue
                delta = -sign * k
                fill = perps.fill_price(state.skews[col], state.markets[col].skew_scale, delta, price)
                # selling (delta < 0) accepts a lower fill, buying a higher one
                acceptable = fill * (10_000 - sign * slippage_bps) // 10_000
                options.append(
                    ReducePosition(
                        acct.user,
                        acct.account_id,
                        state.markets[col].market_id,
                        state.markets[col].symbol,
                        delta,
                        acceptable,
                        fill,
                        now / WAD,
                        _fmt_hf(after),
                        after >= target,
                    )
                )
        reaching = [o for o in options if o.reaches_target and _kind(o) == kind]
        if reaching:
            return min(reaching, key=lambda o: abs(o.size_delta) if isinstance(o, ReducePosition) else o.amount)
    return max(options, key=lambda o: o.health_after) if options else None


def _kind(o: AddMargin | ReducePosition) -> str:
    return "add_margin" if isinstance(o, AddMargin) else "reduce"

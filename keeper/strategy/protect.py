"""Protect: the exact amount to repay or supply that brings a watched account to its target
health factor. Pure: same inputs, same action."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keeper.config import ProtectSettings
from keeper.protocols.aave_v3 import (
    MAX_UINT256,
    WAD,
    Market,
    Position,
    account_data,
    after_repay,
    after_supply,
    debt_balance,
)
from keeper.strategy.actions import Protect


def _hf(pos: Position, market: Market) -> int:
    return account_data(pos, market).health_factor_wad


def smallest_amount(apply: Callable[[int], Position], market: Market, cap: int, target_wad: int) -> tuple[int, int]:
    """Smallest amount in [0, cap] whose resulting HF >= target (HF grows with the amount);
    `cap` itself when even that falls short. Returns (amount, hf_wad_after)."""
    hf_cap = _hf(apply(cap), market)
    if hf_cap < target_wad:
        return cap, hf_cap
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi) // 2
        if _hf(apply(mid), market) >= target_wad:
            hi = mid
        else:
            lo = mid + 1
    return lo, _hf(apply(lo), market)


def _fmt_hf(wad: int) -> float:
    return float("inf") if wad == MAX_UINT256 else wad / WAD


def decide_protect(pos: Position, market: Market, wallet: Sequence[int], settings: ProtectSettings) -> Protect | None:
    """None while the account is above its trigger (or has no debt); otherwise the cheapest action
    in `settings.prefer` order that reaches the target, or the one that gets closest."""
    hf_now = _hf(pos, market)
    if hf_now == MAX_UINT256 or hf_now >= int(settings.trigger_hf * WAD):
        return None
    target = int(settings.target_hf * WAD) * (10_000 + settings.target_buffer_bps) // 10_000
    options: list[Protect] = []
    for kind in settings.prefer:
        for i, cfg in enumerate(market.configs):
            if not cfg.active or cfg.paused or wallet[i] <= 0:
                continue
            if kind == "repay":
                if not pos.is_borrowing(i):
                    continue
                cap = min(wallet[i], debt_balance(pos, market, i))

                def apply(a: int, i: int = i) -> Position:
                    return after_repay(pos, market, i, a)

                amount, hf_after = smallest_amount(apply, market, cap, target)
            else:
                usable = pos.is_collateral(i) or (pos.scaled_collateral[i] == 0 and cfg.ltv_bps > 0)
                if cfg.frozen or cfg.liquidation_threshold_bps == 0 or not usable:
                    continue

                def apply(a: int, i: int = i) -> Position:
                    return after_supply(pos, market, i, a)

                amount, hf_after = smallest_amount(apply, market, wallet[i], target)
            if amount == 0 or hf_after <= hf_now:
                continue
            options.append(
                Protect(
                    kind=kind,  # type: ignore[arg-type]
                    account=pos.user,
                    asset=market.reserves[i].asset,
                    symbol=market.reserves[i].symbol,
                    amount=amount,
                    value_base=amount * market.prices_base[i] // cfg.unit,
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

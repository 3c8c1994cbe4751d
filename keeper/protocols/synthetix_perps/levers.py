"""Synthetix v3 perps levers (pure): add margin or reduce a position to the target margin ratio;
liquidate accounts the market says it can liquidate when the reward pays for the gas."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keeper.protocols.base import LiquidationPlan, Skip
from keeper.protocols.synthetix_perps import math as perps
from keeper.protocols.synthetix_perps.actions import AddMargin, LiquidatePerps, ReducePosition
from keeper.risk.intmath import MAX_UINT256, WAD, wad_to_health
from keeper.settings import LiquidateSettings, ProtectSettings
from keeper.strategy.sizing import smallest_amount


def decide_protect(
    acct: perps.PerpsAccount,
    state: perps.PerpsState,
    wallet_usd: int,
    settings: ProtectSettings,
    prefer: Sequence[str],
    slippage_bps: int,
    usd_token: str = "",
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
                    AddMargin(
                        acct.user, acct.account_id, amount, now / WAD, wad_to_health(after), after >= target, usd_token
                    )
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
                        wad_to_health(after),
                        after >= target,
                    )
                )
        reaching = [o for o in options if o.reaches_target and _kind(o) == kind]
        if reaching:
            return min(reaching, key=lambda o: abs(o.size_delta) if isinstance(o, ReducePosition) else o.amount)
    return max(options, key=lambda o: o.health_after) if options else None


def _kind(o: AddMargin | ReducePosition) -> str:
    return "add_margin" if isinstance(o, AddMargin) else "reduce"


def decide_liquidations(
    accounts: Iterable[perps.PerpsAccount], settings: LiquidateSettings, gas_cost_usd: int
) -> LiquidationPlan:
    """`liquidate` for every account the market says it can liquidate (`canLiquidate`, read at the
    decision block) whose reward exceeds gas by `min_profit_usd`; richest first. Amounts in USD
    with 18 decimals."""
    min_profit = int(settings.min_profit_usd * perps.UNIT)
    chosen: list[LiquidatePerps] = []
    skipped: list[Skip] = []
    for a in accounts:
        if not a.can_liquidate:
            continue
        figures = {"available_margin": a.available_margin, "required_maintenance_margin": a.required_maintenance_margin}
        profit = a.max_liquidation_reward - gas_cost_usd
        if not settings.enabled:
            skipped.append(Skip(a.user, "liquidation disabled", figures))
        elif profit < min_profit:
            why = f"unprofitable: reward {a.max_liquidation_reward} - gas {gas_cost_usd} < {min_profit}"
            skipped.append(Skip(a.user, why, figures))
        else:
            reward = a.max_liquidation_reward
            chosen.append(LiquidatePerps(a.user, a.account_id, reward, reward, a.margin_ratio_wad / WAD))
    chosen.sort(key=lambda x: x.expected_reward, reverse=True)
    return LiquidationPlan(tuple(chosen), tuple(skipped))

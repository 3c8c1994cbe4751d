"""Protective sizing shared by the lending protocols: the exact amount to repay or supply that
brings a watched account to its target health factor. Pure: same inputs, same action.

Each protocol lists its levers (repay this debt asset, supply that collateral, with the most the
wallet and the protocol allow: `keeper/protocols/<name>/levers.py`); one search finds, per lever,
the smallest amount whose health factor, computed with the protocol's integer math, reaches the
target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keeper.risk.intmath import MAX_UINT256, WAD, wad_to_health
from keeper.settings import ProtectSettings
from keeper.strategy.actions import Protect


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


def target_wad(settings: ProtectSettings) -> int:
    """The health factor sizing aims at: the target plus its buffer (WAD)."""
    return int(settings.target_hf * WAD) * (10_000 + settings.target_buffer_bps) // 10_000


def choose(account: str, levers: Sequence[Lever], hf_now: int, settings: ProtectSettings) -> Protect | None:
    """None while the account is above its trigger (or has no debt); otherwise the cheapest
    action in `settings.prefer` order that reaches the target, or the one that gets closest."""
    if hf_now == MAX_UINT256 or hf_now >= int(settings.trigger_hf * WAD):
        return None
    target = target_wad(settings)
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
                    health_before=wad_to_health(hf_now),
                    health_after=wad_to_health(hf_after),
                    reaches_target=hf_after >= target,
                )
            )
        reaching = [o for o in options if o.reaches_target and o.kind == kind]
        if reaching:
            return min(reaching, key=lambda o: o.value_base)
    if not options:
        return None
    return max(options, key=lambda o: o.health_after)

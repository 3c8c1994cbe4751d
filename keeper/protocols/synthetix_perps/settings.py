"""[perps]: one Synthetix v3 perps market proxy."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, field_validator

from keeper.settings import Address, Model

LEVERS = ("add_margin", "reduce")


def _account_ids(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(a, int) and not isinstance(a, bool) for a in value):
        raise ValueError(f"expected a list of account ids (integers), got {value!r}")
    return tuple(value)


def _levers(value: Any) -> Any:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list of actions, got {value!r}")
    return tuple(str(i).strip() for i in items)


def _known_levers(value: tuple[str, ...]) -> tuple[str, ...]:
    for p in value:
        if p not in LEVERS:
            raise ValueError(f"unknown action {p!r} (use 'add_margin', 'reduce')")
    return value


class PerpsSettings(Model):
    market: Address
    """Synthetix v3 PerpsMarketProxy address."""
    usd_token: Address
    """snxUSD (collateral id 0): what the keeper adds as margin."""
    native_market_id: int
    """The market whose index price is the native coin's (ETH), to value gas."""
    accounts: Annotated[tuple[int, ...], BeforeValidator(_account_ids)] = ()
    """Perps account ids to protect (the keeper's address needs PERPS_MODIFY_COLLATERAL and, to
    reduce, PERPS_COMMIT_ASYNC_ORDER on each)."""
    prefer: Annotated[tuple[str, ...], BeforeValidator(_levers), AfterValidator(_known_levers)] = LEVERS
    settle_orders: bool = False
    """Settle the keeper's own reduce orders right after committing them. Only where the market
    settles on chain without off-chain price data (our test market); on Synthetix's deployed
    markets settlement keepers do it with Pyth data."""
    reduce_slippage_bps: int = 100
    trigger_ratio: float = 0.0
    """Act when the margin ratio (available margin / (maintenance margin + reward)) is below
    this; 0: [protect] trigger_hf."""
    target_ratio: float = 0.0
    """Bring the margin ratio back to this; 0: [protect] target_hf."""
    start_block: int = 0

    @field_validator("target_ratio")
    @classmethod
    def _ratios(cls, target: float, info: ValidationInfo) -> float:
        trigger = info.data.get("trigger_ratio", 0.0)
        if (trigger or target) and not 1.0 < trigger < target:
            raise ValueError(
                f"trigger_ratio ({trigger}) and target_ratio ({target}): set both, with "
                "1 < trigger_ratio < target_ratio"
            )
        return target

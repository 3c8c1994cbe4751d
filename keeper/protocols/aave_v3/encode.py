"""Aave v3 actions as unsigned calldata for the Pool (only the executor signs), and as console lines."""

from __future__ import annotations

from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.aave_v3.actions import Liquidate
from keeper.protocols.aave_v3.math import VARIABLE_RATE_MODE
from keeper.sources.abi import fn
from keeper.strategy.actions import Action, Protect

POOL = "AaveV3Pool"


def encode(pool: str, action: Action) -> tuple[TxRequest, Approval | None]:
    """The Pool call for an action and the approval of the Pool it needs."""
    if isinstance(action, Protect):
        if action.kind == "repay":
            data = fn(POOL, "repay").encode(action.asset, action.amount, VARIABLE_RATE_MODE, action.account)
        else:
            data = fn(POOL, "supply").encode(action.asset, action.amount, action.account, 0)
        desc = f"{action.kind} {action.amount} {action.symbol} for {action.account}"
        return TxRequest(pool, data, desc), (action.asset, pool, action.amount)
    if isinstance(action, Liquidate):
        data = fn(POOL, "liquidationCall").encode(
            action.collateral_asset, action.debt_asset, action.account, action.debt_to_cover, False
        )
        desc = (
            f"liquidationCall({action.collateral_symbol}, {action.debt_symbol}, {action.account}, "
            f"{action.debt_to_cover})"
        )
        return TxRequest(pool, data, desc), (action.debt_asset, pool, action.debt_to_cover)
    raise TypeError(f"not an Aave v3 action: {type(action).__name__}")


def account_data_call(user: str) -> bytes:
    return fn(POOL, "getUserAccountData").encode(user)


def decode_health_factor(raw: bytes) -> int:
    """getUserAccountData's health factor (WAD)."""
    return int(fn(POOL, "getUserAccountData").decode(raw)[5])

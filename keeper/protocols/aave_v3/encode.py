"""Aave v3 actions as unsigned calldata for the Pool (only the executor signs), and as console lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.aave_v3.actions import FlashLiquidate, Liquidate, RepayStable
from keeper.protocols.aave_v3.math import STABLE_RATE_MODE, VARIABLE_RATE_MODE
from keeper.risk.intmath import MAX_UINT256
from keeper.sources.abi import event, fn
from keeper.strategy.actions import Action, Deleverage, Protect
from keeper.strategy.flash import LOAN_SOURCES

POOL = "AaveV3Pool"


def encode(pool: str, action: Action) -> tuple[TxRequest, Approval | None]:
    """The Pool call for an action and the approval of the Pool it needs."""
    if isinstance(action, Protect):
        if action.kind == "repay":
            mode = STABLE_RATE_MODE if isinstance(action, RepayStable) else VARIABLE_RATE_MODE
            data = fn(POOL, "repay").encode(action.asset, action.amount, mode, action.account)
        else:
            data = fn(POOL, "supply").encode(action.asset, action.amount, action.account, 0)
        kind = "repay stable" if isinstance(action, RepayStable) else action.kind
        desc = f"{kind} {action.amount} {action.symbol} for {action.account}"
        return TxRequest(pool, data, desc), (action.asset, pool, action.amount)
    if isinstance(action, FlashLiquidate):
        return flash_call(pool, action), None
    if isinstance(action, Deleverage):
        return deleverage_call(pool, action), None
    if isinstance(action, Liquidate):
        data = fn(POOL, "liquidationCall").encode(
            action.collateral_asset, action.debt_asset, action.account, action.debt_to_cover, False
        )
        desc = (
            f"liquidationCall({action.collateral_symbol}, {action.debt_symbol}, {action.account}, "
            f"{'max' if action.debt_to_cover == MAX_UINT256 else action.debt_to_cover})"
        )
        return TxRequest(pool, data, desc), (action.debt_asset, pool, action.max_spend)
    raise TypeError(f"not an Aave v3 action: {type(action).__name__}")


def flash_call(pool: str, a: FlashLiquidate) -> TxRequest:
    """FlashLiquidator.liquidateAave(loan, liquidation, minProfit): no approval, nothing from the wallet."""
    path = bytes.fromhex(a.path[2:]) if a.path else b""
    loan = (LOAN_SOURCES[a.lender_source], a.lender, a.debt_asset, a.borrowed)
    liquidation = (pool, a.collateral_asset, a.account, a.debt_to_cover, (path, a.min_out))
    data = fn("FlashLiquidator", "liquidateAave").encode(loan, liquidation, a.min_profit)
    cover = "max" if a.debt_to_cover == MAX_UINT256 else str(a.debt_to_cover)
    desc = (
        f"flash liquidationCall({a.collateral_symbol}, {a.debt_symbol}, {a.account}, {cover}) "
        f"borrowing {a.borrowed} {a.debt_symbol} from {a.lender_source} {a.lender[:10]}, min out {a.min_out}, "
        f"min profit {a.min_profit}"
    )
    return TxRequest(a.liquidator, data, desc)


def deleverage_call(pool: str, a: Deleverage) -> TxRequest:
    """Deleverager.deleverageAave(loan, deleverage): no approval, nothing from the wallet."""
    path = bytes.fromhex(a.path[2:]) if a.path else b""
    loan = (LOAN_SOURCES[a.lender_source], a.lender, a.debt_asset, a.borrowed)
    job = (pool, a.account, a.collateral_asset, a.collateral_token, a.repay, a.withdraw, (path, a.min_out),
           a.min_hf_wad, a.max_hf_wad)  # fmt: skip
    data = fn("Deleverager", "deleverageAave").encode(loan, job)
    desc = (
        f"deleverage {a.account}: repay {a.repay} {a.debt_symbol} with {a.withdraw} {a.collateral_symbol} sold, "
        f"borrowing {a.borrowed} from {a.lender_source} {a.lender[:10]}, min out {a.min_out}, "
        f"health factor in [{a.min_hf_wad / 1e18:.4f}, {a.max_hf_wad / 1e18:.4f}]"
    )
    return TxRequest(a.deleverager, data, desc)


def account_data_call(user: str) -> bytes:
    return fn(POOL, "getUserAccountData").encode(user)


def decode_health_factor(raw: bytes) -> int:
    """getUserAccountData's health factor (WAD)."""
    return int(fn(POOL, "getUserAccountData").decode(raw)[5])


def chain_amounts(pool: str, action: Action, logs: Sequence[tuple[str, tuple[str, ...], str]]) -> dict[str, Any] | None:
    """The Pool's own figures for a mined action, from its receipt's events: LiquidationCall's
    debtToCover and liquidatedCollateralAmount, or Repay's / Supply's amount."""
    name = (
        "LiquidationCall"
        if isinstance(action, Liquidate)
        else ("Repay" if getattr(action, "kind", "") == "repay" else "Supply")
    )
    ev = event(POOL, name)
    for address, topics, data in logs:
        if address.lower() != pool.lower() or not topics or bytes.fromhex(topics[0][2:]) != ev.topic:
            continue
        args = ev.decode([bytes.fromhex(t[2:]) for t in topics], bytes.fromhex(data[2:]))
        who = args.get("user") if name == "LiquidationCall" else args.get("onBehalfOf", args.get("user"))
        if str(who).lower() != action.subject.lower():
            continue
        if isinstance(action, Liquidate):
            return {
                "debt_repaid": int(args["debtToCover"]),
                "collateral_seized": int(args["liquidatedCollateralAmount"]),
            }
        return {"amount": int(args["amount"])}
    return None

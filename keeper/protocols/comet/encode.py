"""Compound v3 actions as unsigned calldata for the Comet proxy (only the executor signs)."""

from __future__ import annotations

from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.comet.actions import Absorb, BuyCollateral, FlashAbsorb
from keeper.protocols.comet.math import ABI
from keeper.sources.abi import fn
from keeper.strategy.actions import Action, Deleverage, Protect
from keeper.strategy.flash import LOAN_SOURCES


def encode(comet: str, absorber: str, action: Action) -> tuple[TxRequest, Approval | None]:
    """The Comet call for an action (absorbed collateral and purchases go to `absorber`, the
    keeper) and the approval of Comet it needs."""
    if isinstance(action, Protect):
        desc = f"supplyTo({action.account}, {action.symbol}, {action.amount}) [{action.kind}]"
        data = fn(ABI, "supplyTo").encode(action.account, action.asset, action.amount)
        return TxRequest(comet, data, desc), (action.asset, comet, action.amount)
    if isinstance(action, Absorb):
        desc = f"absorb({absorber}, [{', '.join(action.accounts)}])"
        return TxRequest(comet, fn(ABI, "absorb").encode(absorber, list(action.accounts)), desc), None
    if isinstance(action, BuyCollateral):
        desc = f"buyCollateral({action.symbol}, {action.min_amount}, {action.base_amount}, {absorber})"
        data = fn(ABI, "buyCollateral").encode(action.asset, action.min_amount, action.base_amount, absorber)
        return TxRequest(comet, data, desc), (action.base_token, comet, action.base_amount)
    if isinstance(action, Deleverage):
        a = action
        loan = (LOAN_SOURCES[a.lender_source], a.lender, a.debt_asset, a.borrowed)
        path = bytes.fromhex(a.path[2:]) if a.path else b""
        sale = (path, a.min_out)
        work = (comet, a.account, a.collateral_asset, a.repay, a.withdraw, sale, a.min_hf_wad, a.max_hf_wad)
        desc = (
            f"deleverage {a.account}: repay {a.repay} {a.debt_symbol} with {a.withdraw} {a.collateral_symbol} sold, "
            f"borrowing {a.borrowed} from {a.lender[:10]}, min out {a.min_out}, health factor in "
            f"[{a.min_hf_wad / 1e18:.4f}, {a.max_hf_wad / 1e18:.4f}]"
        )
        return TxRequest(a.deleverager, fn("Deleverager", "deleverageComet").encode(loan, work), desc), None
    if isinstance(action, FlashAbsorb):
        loan = (LOAN_SOURCES[action.lender_source], action.lender, action.base_token, action.borrowed)
        sales = [(bytes.fromhex(b.path[2:]), b.min_out) for b in action.buys]
        job = (
            comet,
            list(action.accounts),
            [b.asset for b in action.buys],
            [b.base_amount for b in action.buys],
            sales,
        )
        data = fn("FlashLiquidator", "liquidateComet").encode(loan, job, action.min_profit)
        desc = (
            f"flash absorb([{', '.join(action.accounts)}]) + {len(action.buys)} buy(s) and sale(s), borrowing "
            f"{action.borrowed} {action.base_symbol} from {action.lender[:10]}, min profit {action.min_profit}"
        )
        return TxRequest(action.liquidator, data, desc), None
    raise TypeError(f"not a Compound v3 action: {type(action).__name__}")

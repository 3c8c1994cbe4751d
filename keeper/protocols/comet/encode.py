"""Compound v3 actions as unsigned calldata for the Comet proxy (only the executor signs)."""

from __future__ import annotations

from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.comet.actions import Absorb, BuyCollateral
from keeper.protocols.comet.math import ABI
from keeper.sources.abi import fn
from keeper.strategy.actions import Action, Protect


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
    raise TypeError(f"not a Compound v3 action: {type(action).__name__}")

"""Synthetix v3 perps actions as unsigned calldata for the PerpsMarketProxy (only the executor signs)."""

from __future__ import annotations

from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.synthetix_perps.actions import AddMargin, LiquidatePerps, ReducePosition, SettleOrder
from keeper.protocols.synthetix_perps.math import ABI
from keeper.sources.abi import fn
from keeper.strategy.actions import Action

ZERO_ADDRESS = "0x" + "0" * 40
TRACKING_CODE = b"keeper".ljust(32, b"\0")


def encode(proxy: str, action: Action) -> tuple[TxRequest, Approval | None]:
    if isinstance(action, AddMargin):
        data = fn(ABI, "modifyCollateral").encode(action.account_id, 0, action.amount)
        desc = f"modifyCollateral({action.account_id}, 0, +{action.amount})"
        return TxRequest(proxy, data, desc), (action.usd_token, proxy, action.amount)
    if isinstance(action, ReducePosition):
        request = (
            action.market_id,
            action.account_id,
            action.size_delta,
            0,
            action.acceptable_price,
            TRACKING_CODE,
            ZERO_ADDRESS,
        )
        desc = (
            f"commitOrder({action.symbol}, account {action.account_id}, size {action.size_delta}, "
            f"acceptable price {action.acceptable_price})"
        )
        return TxRequest(proxy, fn(ABI, "commitOrder").encode(request), desc), None
    if isinstance(action, SettleOrder):
        data = fn(ABI, "settleOrder").encode(action.account_id)
        return TxRequest(proxy, data, f"settleOrder({action.account_id})"), None
    if isinstance(action, LiquidatePerps):
        data = fn(ABI, "liquidate").encode(action.account_id)
        return TxRequest(proxy, data, f"liquidate({action.account_id})"), None
    raise TypeError(f"not a Synthetix perps action: {type(action).__name__}")

"""Executor: turns an unsigned transaction into a sent, confirmed one.

simulate (eth_call) -> estimate gas -> EIP-1559 fees under the caps -> nonce -> sign -> journal
(raw transaction and hash stored) -> send -> receipt -> journal. Dry-run stops after the
simulation. Built in three layers, one module each: sending (caps, simulation, fees, approvals,
signing through the Signer, broadcast), tracking (one receipt path, replacement of stuck
transactions, recovery at start-up) and bursts (a block's independent actions together). Every
chain access goes through the Chain port; the key lives only in keeper.execution.signer.
"""

from __future__ import annotations

from keeper.execution.bundle import Bundles
from keeper.execution.sending import DRY_RUN_NOTE
from keeper.execution.tx import Planned, TxRequest, TxResult

__all__ = ["DRY_RUN_NOTE", "Executor", "Planned", "TxRequest", "TxResult"]


class Executor(Bundles):
    """The keeper's executor: `execute` one action, `burst` many, `recover` what a previous run
    left in flight."""

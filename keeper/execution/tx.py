"""What the executor takes and gives back, as plain values: an unsigned call, an action's
transaction in a burst, and what became of a transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keeper.execution.journal import ActionKey

Approval = tuple[str, str, int]
"""(token, spender, amount) an action needs approved first."""


def summed(approvals: Iterable[Approval | None]) -> dict[tuple[str, str], int]:
    """What several actions need approved, summed per (token, spender): one approval each."""
    totals: dict[tuple[str, str], int] = {}
    for a in approvals:
        if a is not None:
            totals[a[0], a[1]] = totals.get((a[0], a[1]), 0) + a[2]
    return totals


@dataclass(frozen=True)
class TxRequest:
    """An unsigned call the keeper wants to make."""

    to: str
    data: bytes
    description: str
    value: int = 0


@dataclass(frozen=True)
class Planned:
    """One action's transaction in a burst."""

    tx: TxRequest
    key: ActionKey | None = None
    max_gas_cost_wei: int | None = None
    """What the action is worth in gas (None: no bound beyond the caps)."""
    approve: Approval | None = None
    """(token, spender, amount) the action needs approved first."""
    protective: bool = False
    """On the user's own position (which private-relay fallback setting applies)."""
    role: str = "action"
    """'action', or 'approval' (an ERC20 approval in a bundle before its action)."""


@dataclass(frozen=True)
class TxResult:
    description: str
    sent: bool
    """False in dry-run (simulated only) or when simulation was impossible."""
    tx_hash: str | None = None
    status: int | None = None
    gas_used: int = 0
    effective_gas_price_wei: int = 0
    block: int | None = None
    gas_estimate: int = 0
    note: str = ""
    logs: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    """The receipt's logs as (address, topics, data), hex: what the chain did (decoded by the
    market's adapter into the amounts the keeper reports beside its prediction)."""

    @property
    def gas_cost_wei(self) -> int:
        return self.gas_used * self.effective_gas_price_wei


Outcomes = list["list[TxResult] | Exception"]

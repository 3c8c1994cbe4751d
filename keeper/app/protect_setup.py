"""`keeper protect-setup`: what each protected account must allow keeper's Deleverager before the
keeper can deleverage it (Aave: an approval of each aToken it holds as collateral; Compound v3:
`allow`), read from the chain, printed with the calldata that grants it and the calldata that
revokes it. With `--send`, the keeper's key sends those of its own address (the executor:
simulated first, the caps, the journal, the receipt); another address's are printed for its
owner to send. `keeper status` reports the same readiness per protected position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from keeper.errors import ConfigError, ExecutionError, SkipAction, TransientError
from keeper.execution.journal import ActionKey
from keeper.execution.tx import TxRequest
from keeper.protocols.base import DeleverageRules, Grant

if TYPE_CHECKING:
    from keeper.app.loop import Keeper


@dataclass(frozen=True)
class Readiness:
    market: str
    account: str
    grant: Grant
    current: int | None
    """What the check read (None: the read failed)."""

    @property
    def granted(self) -> bool:
        return self.current is not None and self.current >= self.grant.needed

    def line(self) -> str:
        if self.current is None:
            return f"deleverage of {self.account}: {self.grant.what} could not be read"
        state = "granted" if self.granted else "missing: run keeper protect-setup"
        return f"deleverage of {self.account}: {self.grant.what} {state}"


async def readiness(keeper: Keeper) -> list[Readiness]:
    """Each protected position's grants to [protect] deleverager, read at the chain's head."""
    deleverager = keeper.settings.protect.deleverager
    out: list[Readiness] = []
    if not deleverager:
        return out
    block = (await keeper.chain.head()).number
    for w in keeper.watches:
        if not w.adapter.capabilities.deleverage or w.book is None:
            continue
        for account in w.adapter.protected_accounts():
            pos = w.book.positions.get(account)
            if pos is None:
                continue
            grants = cast(DeleverageRules, w.adapter).deleverage_grants(pos, deleverager)
            raw = await keeper.chain.multicall([g.check for g in grants], block) if grants else []
            for g, r in zip(grants, raw, strict=True):
                value = int.from_bytes(r[:32], "big") if r and len(r) >= 32 else None
                out.append(Readiness(w.label, account, g, value))
    return out


async def note_readiness(keeper: Keeper) -> None:
    """For `keeper status`: each market's readiness lines among its notes."""
    found = await readiness(keeper)
    for w in keeper.watches:
        w.deleverage_notes = [r.line() for r in found if r.market == w.label]


async def protect_setup(keeper: Keeper, *, send: bool, revoke: bool) -> tuple[str, int]:
    """The text to print and the exit code (1: a grant the key could send failed or was refused)."""
    ps = keeper.settings.protect
    if not ps.deleverager:
        raise ConfigError("protect-setup: [protect] deleverager is not set (deploy one: keeper deploy-deleverager)")
    if not ps.accounts:
        raise ConfigError("protect-setup: [protect] accounts is empty: no position to set up")
    await keeper.start()
    found = await readiness(keeper)
    if not found:
        return (f"nothing to set up: no protected position with collateral on a market the Deleverager "
                f"{ps.deleverager} serves"), 0  # fmt: skip
    lines, failed = [f"Deleverager {ps.deleverager}"], 0
    me = keeper.executor.address.lower()
    for r in found:
        data = r.grant.revoke if revoke else r.grant.grant
        lines.append(f"{r.market}: {r.line()}")
        lines.append(f"  {'revoke' if revoke else 'grant'}: from {r.account} to {r.grant.to} data 0x{data.hex()}")
        if not revoke:
            lines.append(f"  revoke later: from {r.account} to {r.grant.to} data 0x{r.grant.revoke.hex()}")
        todo = (r.current != 0) if revoke else not r.granted
        if not todo:
            continue
        if r.account.lower() != me:
            lines.append(f"  to send from {r.account}: the keeper's key signs only for {keeper.executor.address}")
            continue
        tx = TxRequest(r.grant.to, data, f"{'revoke' if revoke else 'grant'} {r.grant.what} for {ps.deleverager}")
        key = ActionKey(r.market, r.account, "Revoke" if revoke else "Grant", keeper.last_block or 0)
        try:
            results = await keeper.executor.execute(tx, key=key if send else None, protective=True)
        except (SkipAction, ExecutionError, TransientError) as exc:
            lines.append(f"  not sent: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        done = results[-1]
        if not done.sent:
            lines.append("  dry-run: simulated only, nothing sent (--send sends it)")
        elif done.status == 1:
            lines.append(f"  sent {done.tx_hash}, mined in block {done.block}: status 1")
        else:
            lines.append(f"  sent {done.tx_hash}: status {done.status} {done.note}".rstrip())
            failed += 1
    return "\n".join(lines), 1 if failed else 0

"""Start-up of the keeper loop, resumable: each stage (the chain check, the configured addresses,
the journal's binding, each market's layout and discovery, the first read) is kept once it
succeeded, so a failed request is retried at the next attempt from where it failed, not from the
start. What a previous run left in flight is recovered beside the loop, which watches positions
from its first block. The base class of the Keeper (keeper.app.loop)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from eth_utils import to_checksum_address
from web3.exceptions import ContractLogicError

from keeper.app.execute import Execution
from keeper.app.reads import refresh
from keeper.app.watch import Watch
from keeper.errors import ConfigError, StorageError, TransientError
from keeper.execution.journal import Checkpoints
from keeper.protocols.registry import PROTOCOLS
from keeper.settings import Settings
from keeper.sources.abi import DECODE_ERRORS, fn
from keeper.sources.chain import Head
from keeper.sources.failures import UNFORESEEN

log = logging.getLogger("keeper")
NOT_OURS: tuple[type[Exception], ...] = (ContractLogicError, *DECODE_ERRORS)
"""A contract that does not answer the liquidator's views."""


@dataclass
class Boot:
    """What start-up has done so far (kept across failed attempts)."""

    chain_checked: bool = False
    head: Head | None = None
    bound: bool = False
    loaded: set[int] = field(default_factory=set)
    touched: dict[int, list[str]] = field(default_factory=dict)
    attempts: int = 0


def setting_of(settings: Settings, address: str) -> str:
    """The configuration key that holds `address` ('[aave] pool', 'multicall3'), for messages."""
    if address.lower() == settings.multicall3.lower():
        return "multicall3"
    for name in ("liquidator", "factory", "quoter", "router"):
        if str(getattr(settings.flash, name)).lower() == address.lower():
            return f"[flash] {name}"
    for entry in PROTOCOLS:
        for market in settings.market_tables(entry.table):
            for name, value in market.model_dump().items():
                if isinstance(value, str) and value.lower() == address.lower():
                    return f"[{entry.table}] {name}"
    return "an address"


class Startup(Execution):
    watches: list[Watch]
    checkpoints: Checkpoints | None
    wallet: dict[str, int]
    last_block: int | None
    last_reconcile: int
    settings: Settings

    def _init_startup(self) -> None:
        self._boot = Boot()
        self._recovery: asyncio.Task[None] | None = None
        self._reconciling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check the chain and the configured addresses, bind the journal, start recovery, load
        and discover every market, and read them all once. Raises TransientError where a request
        failed; called again, it goes on from there."""
        b = self._boot
        b.attempts += 1
        if not b.chain_checked:
            await self.chain.check_chain_id(self.settings.chain_id)
            await self._check_code()
            b.chain_checked = True
        if not b.bound:
            genesis = await self.chain.head(0)
            try:
                self.executor.journal.bind(self.settings.chain_id, "0x" + genesis.hash.hex())
                if self.checkpoints is not None:
                    self.checkpoints.bind(self.settings.chain_id, "0x" + genesis.hash.hex())
            except StorageError as exc:
                raise ConfigError(f"the journal cannot be opened for writing: {exc}") from None
            b.bound = True
        if not self.executor.dry_run and self._recovery is None:
            self._log_route()
            self._start_recovery("a previous run")
        if b.head is None:
            b.head = await self.chain.head()
        head = b.head
        for k, w in enumerate(self.watches):
            if k not in b.loaded:
                await w.load(self.chain, head.number)
                b.loaded.add(k)
            if k not in b.touched:
                b.touched[k] = await self._discover(w, head)
        await self._refresh(head, b.touched)
        self.last_block = self.last_reconcile = head.number
        if b.attempts > 1:
            log.info("start-up completed at attempt %d (resumed where it failed)", b.attempts)
        for w in self.watches:
            if w.book is not None:
                log.info(
                    "%s: watching %d accounts on %d assets from block %d",
                    w.label,
                    len(w.book),
                    w.book.n_assets,
                    head.number,
                )

    def _log_route(self) -> None:
        """Where transactions go (the relay named by its host only: its URL may hold a key)."""
        e = self.settings.execution
        if e.private_rpc_url is None:
            log.info("sending through the public RPC ([execution] private_rpc_url is not set)")
            return
        host = urlsplit(e.private_rpc_url.get_secret_value()).hostname
        log.info(
            "sending through the private relay at %s: bundles for dependent transactions; after %d blocks not "
            "included, public fallback for protective actions %s, for liquidations %s%s", host, e.private_blocks,
            "on" if e.private_fallback_protect else "off", "on" if e.private_fallback_liquidate else "off",
            "; every private transaction also sent publicly (private_also_public)" if e.private_also_public else "",
        )  # fmt: skip

    async def _discover(self, w: Watch, head: Head) -> list[str]:
        start, known = w.adapter.start_block, set()
        saved = self.checkpoints.load(self._market_id(w)) if self.checkpoints is not None else None
        if saved is not None and w.adapter.start_block <= saved[0] <= head.number:
            start, known = saved[0] + 1, set(saved[1])
            log.info("%s: resuming discovery at block %d with %d known accounts", w.label, start, len(known))
        topics = [["0x" + t.hex() for t in w.adapter.topic0s()]]
        logs = await self.chain.get_logs(w.address, topics, start, head.number)
        return sorted(known | w.adapter.users_from_logs(logs) | w.adapter.discovery_seed())

    async def _check_code(self) -> None:
        """Every configured contract must have code on this chain (ConfigError naming the key)."""
        flash = self.settings.flash
        contracts = [flash.liquidator, flash.factory, flash.quoter, flash.router] if flash.funding != "wallet" else []
        addresses = [self.settings.multicall3, *(w.address for w in self.watches), *(a for a in contracts if a)]
        # every read finishes before a failure is raised: nothing is left running behind it
        got = await asyncio.gather(*(self.chain.code(a) for a in addresses), return_exceptions=True)
        if failed := [g for g in got if isinstance(g, BaseException)]:
            raise failed[0]
        codes = [g for g in got if not isinstance(g, BaseException)]
        empty = [a for a, code in zip(addresses, codes, strict=True) if not code]
        if empty:
            named = ", ".join(f"{setting_of(self.settings, a)} = {a}" for a in empty)
            where = self.settings.source or "the configuration"
            raise ConfigError(f"no contract code on chain {self.settings.chain_id} at {named} (in {where})")
        if flash.funding != "wallet":
            await self._check_liquidator()

    async def _check_liquidator(self) -> None:
        """The flash liquidator must be ours, owned by the keeper's key, selling through [flash] router."""
        f, where = self.settings.flash, self.settings.source or "the configuration"
        found = []
        for name in ("owner", "router"):
            try:
                raw = await self.chain.call(f.liquidator, fn("FlashLiquidator", name).encode())
                found.append(str(to_checksum_address(fn("FlashLiquidator", name).decode(raw)[0])))
            except NOT_OURS:
                raise ConfigError(
                    f"[flash] liquidator = {f.liquidator} is not keeper's FlashLiquidator (no {name}() "
                    f"answer; deploy one with keeper deploy-liquidator) (in {where})"
                ) from None
        owner, router = found
        me = self.executor.address
        if owner.lower() != me.lower():
            raise ConfigError(f"[flash] liquidator = {f.liquidator} is owned by {owner}, not the keeper's address "
                              f"{me}: it would refuse every call (in {where})")  # fmt: skip
        if f.router and router.lower() != f.router.lower():
            raise ConfigError(f"[flash] router = {f.router}, but the liquidator sells through {router} (in {where})")

    async def _refresh(
        self, head: Head, touched: dict[int, list[str]], reconcile: dict[int, list[str]] | None = None
    ) -> int:
        """Read every market and the wallet at `head` (keeper.app.reads); returns the drift."""
        self.wallet, drift = await refresh(self.chain, self.watches, self.executor.address, head, touched, reconcile)
        return drift

    # ------------------------------------------------------------------ recovery and reconciliation
    def _start_recovery(self, why: str) -> None:
        """Settle, beside the loop, the transactions the journal has in flight (`why`: what left
        them): rebroadcast at once, tracked together. Their positions count as in flight, so
        nothing is decided twice meanwhile."""

        async def recover() -> None:
            try:
                for r in await self.executor.recover():
                    log.warning("settled a transaction left in flight by %s: %s (%s)", why, r.tx_hash, r.description)
            except (TransientError, StorageError) as exc:
                log.warning("recovery of in-flight transactions stopped (%s): reconciliation goes on", exc)
            except UNFORESEEN:  # a bug: logged, and reconciliation settles what is left
                log.exception("recovery of in-flight transactions failed: reconciliation goes on")

        self._recovery = asyncio.create_task(recover(), name="keeper-recovery")

    def _reconcile_journal(self) -> None:
        """Once per block, beside the loop: settle journaled transactions no tracker follows."""
        if self.executor.dry_run or self.storage_fault:
            return
        busy = [t for t in (self._recovery, self._reconciling) if t is not None and not t.done()]
        if busy:
            return

        async def settle() -> None:
            try:
                if n := await self.executor.reconcile():
                    log.warning("reconciled %d journaled transaction(s) no tracker was following", n)
            except (TransientError, StorageError) as exc:
                log.info("journal reconciliation: %s (next block)", exc)
            except UNFORESEEN:  # a bug: logged; the loop goes on
                log.exception("journal reconciliation failed")

        self._reconciling = asyncio.create_task(settle(), name="keeper-reconcile")

    @staticmethod
    def _market_id(w: Watch) -> str:
        return f"{w.protocol}:{w.address}"

    def _checkpoint(self, block: int) -> None:
        if self.checkpoints is None:
            return
        try:
            for w in self.watches:
                if w.book is not None:
                    self.checkpoints.save(self._market_id(w), block, list(w.book.users))
        except StorageError as exc:  # discovery would rescan more after a restart: nothing is lost
            log.warning("discovery checkpoint not saved: %s", exc)

"""The keeper loop: sources -> book -> risk -> strategy -> executor, once per block.

Per block: one eth_getLogs for the Pool's events (who changed), one multicall for the market
and the wallet, one multicall for the accounts that changed. Decisions and their inputs go to
the `keeper.decision` logger as JSON, and to `report` as a line of text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from keeper.abi import fn, word
from keeper.book import Book, Snapshot
from keeper.chain import Call, Chain, Head
from keeper.config import Settings
from keeper.errors import ConfigError, ExecutionError, FatalError, SkipAction, TransientError
from keeper.execution.executor import Executor, TxRequest, TxResult
from keeper.protocols.aave_v3 import WAD, AaveV3, Market, Position, account_data
from keeper.risk.guards import oracle_problems
from keeper.strategy.actions import Action, Liquidate, Protect
from keeper.strategy.liquidate import decide_liquidations
from keeper.strategy.protect import decide_protect

log = logging.getLogger("keeper")
MAX_CONSECUTIVE_FAILURES = 10
"""The loop stops (FatalError) after this many blocks in a row that failed."""
decision_log = logging.getLogger("keeper.decision")


@dataclass
class Outcome:
    block: int
    action: Action
    results: list[TxResult] = field(default_factory=list)
    error: str | None = None
    health_after: float | None = None
    gas_cost_base: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.results) and all(r.status in (1, None) for r in self.results)


@dataclass
class StepReport:
    block: int
    accounts: int
    below_one: int
    outcomes: list[Outcome]
    requests: int


@dataclass
class Wallet:
    tokens: list[int]
    native_wei: int


class Keeper:
    def __init__(
        self, settings: Settings, chain: Chain, executor: Executor, report: Callable[[str], None] | None = None
    ):
        self.settings = settings
        self.chain = chain
        self.executor = executor
        self.adapter = AaveV3(settings.aave.pool, settings.aave.oracle)
        self.report = report or (lambda line: None)
        self.book: Book | None = None
        self.market: Market | None = None
        self.wallet: Wallet | None = None
        self.last_block: int | None = None
        self.history: list[Outcome] = []
        self.native_index = -1
        self._oracle_bad: dict[int, str] = {}

    # ------------------------------------------------------------------ start-up
    async def start(self) -> None:
        await self.chain.check_chain_id(self.settings.chain_id)
        head = await self.chain.head()
        reserves = await self.adapter.load_reserves(self.chain, head.number)
        if not reserves:
            raise ConfigError(f"{self.settings.source}: the Pool at {self.adapter.pool} lists no reserves")
        assets = [r.asset for r in reserves]
        if self.settings.native_asset not in assets:
            raise ConfigError(
                f"{self.settings.source}: native_asset {self.settings.native_asset} is not a reserve of "
                f"the Pool (reserves: {', '.join(assets)})"
            )
        self.native_index = assets.index(self.settings.native_asset)
        self.book = Book(len(reserves))
        logs = await self.chain.get_logs(
            self.adapter.pool, self.adapter.log_topics(), self.settings.aave.start_block, head.number
        )
        users = self.adapter.users_from_logs(logs) | set(self.settings.protect.accounts)
        await self._refresh(head, sorted(users))
        self.last_block = head.number
        log.info("watching %d accounts on %d reserves from block %d", len(users), len(reserves), head.number)

    async def _refresh(self, head: Head, users: list[str]) -> None:
        assert self.book is not None
        calls = self.adapter.market_calls()
        n_market = len(calls)
        balance_of = fn("ERC20", "balanceOf")
        calls += [Call(r.asset, balance_of.encode(self.executor.address)) for r in self.adapter.reserves]
        calls.append(Call(self.chain.multicall3, fn("Multicall3", "getEthBalance").encode(self.executor.address)))
        results = await self.chain.multicall(calls, head.number)
        self.market = self.adapter.decode_market(results[:n_market], head.number, head.timestamp)
        words = [word(r, "wallet balance") for r in results[n_market:]]
        self.wallet = Wallet(tokens=words[:-1], native_wei=words[-1])
        self.book.set_market(self.market)
        if users:
            positions = await self.adapter.read_positions(
                self.chain, users, head.number, full=self.settings.protect.accounts
            )
            self.book.upsert(positions)

    # ------------------------------------------------------------------ one block
    async def step(self) -> StepReport | None:
        """Process every block since the last one; None when there is no new block."""
        if self.book is None or self.last_block is None:
            await self.start()
        assert self.book is not None and self.last_block is not None
        requests_before = self.chain.requests
        head = await self.chain.head()
        if head.number <= self.last_block:
            return None
        logs = await self.chain.get_logs(self.adapter.pool, self.adapter.log_topics(), self.last_block + 1, head.number)
        touched = sorted(self.adapter.users_from_logs(logs))
        await self._refresh(head, touched)
        self.last_block = head.number
        snap = self.book.snapshot()
        outcomes = await self._act(head, snap)
        below = int(np.sum(snap.health.health_factor < 1.0))
        self.history.extend(outcomes)
        return StepReport(head.number, len(self.book), below, outcomes, self.chain.requests - requests_before)

    async def _act(self, head: Head, snap: Snapshot) -> list[Outcome]:
        assert self.book is not None and self.market is not None and self.wallet is not None
        market, wallet = self.market, list(self.wallet.tokens)
        outcomes: list[Outcome] = []
        bad = self._oracle_guard(head.number, market)

        def exposed(pos: Position, extra: str | None = None) -> list[str]:
            held = [i for i in bad if (pos.is_collateral(i) and pos.scaled_collateral[i]) or pos.is_borrowing(i)]
            if extra is not None and market.index_of(extra) in bad:
                held.append(market.index_of(extra))
            return sorted({f"{market.reserves[i].symbol}: {bad[i]}" for i in held})

        for account in self.settings.protect.accounts:
            pos = self.book.positions.get(account)
            if pos is None:
                continue
            if pos.emode:
                self._decide(head.number, "skip", account, {"reason": f"e-mode category {pos.emode} not supported"})
                continue
            action = decide_protect(pos, market, wallet, self.settings.protect)
            if action is None:
                continue
            if reasons := exposed(pos, action.asset):
                log.warning(
                    "ALERT: not protecting %s (HF %.4f): untrusted oracle price: %s",
                    account,
                    action.health_before,
                    "; ".join(reasons),
                )
                self._decide(
                    head.number,
                    "skip-protect",
                    account,
                    {"reason": "oracle guard", "oracle": reasons, "action": asdict(action)},
                )
                continue
            i = market.index_of(action.asset)
            wallet[i] -= action.amount
            if not action.reaches_target:
                log.warning(
                    "the wallet cannot bring %s to target HF %.3f: best is %.4f with %s",
                    account,
                    self.settings.protect.target_hf,
                    action.health_after,
                    action.kind,
                )
            outcomes.append(await self._execute(head, action))

        protected = set(self.settings.protect.accounts)
        mask = snap.health.health_factor < 1.0
        candidates = [self.book.positions[u] for u, m in zip(snap.users, mask, strict=True) if m and u not in protected]
        candidates = [p for p in candidates if not p.emode]
        trusted = []
        for p in candidates:
            if reasons := exposed(p):
                self._decide(head.number, "skip-liquidation", p.user, {"reason": "oracle guard", "oracle": reasons})
            else:
                trusted.append(p)
        candidates = trusted
        if candidates:
            ex = self.executor.settings
            gas_price_wei = min(2 * head.base_fee_wei + int(ex.priority_fee_gwei * 10**9), int(ex.max_fee_gwei * 10**9))
            gas_cost_base = (
                self.settings.liquidate.gas_estimate * gas_price_wei * market.prices_base[self.native_index] // 10**18
            )
            plan = decide_liquidations(candidates, market, wallet, self.settings.liquidate, gas_cost_base)
            for account, reason in plan.skipped:
                acct = account_data(self.book.positions[account], market)
                self._decide(
                    head.number,
                    "skip-liquidation",
                    account,
                    {
                        "reason": reason,
                        "health_factor_wad": acct.health_factor_wad,
                        "collateral_base": acct.total_collateral_base,
                        "debt_base": acct.total_debt_base,
                    },
                )
            for liquidation in plan.chosen:
                outcomes.append(await self._execute(head, liquidation))
        return outcomes

    def _oracle_guard(self, block: int, market: Market) -> dict[int, str]:
        """Assets whose price must not be acted on; an alert when that set changes."""
        bad = oracle_problems(market.feeds, market.timestamp, self.settings.oracle.max_age_s) if market.feeds else {}
        if bad != self._oracle_bad:
            for i, why in bad.items():
                if self._oracle_bad.get(i) != why:
                    log.warning(
                        "ALERT: oracle price of %s is untrusted, no action on accounts exposed to it: %s",
                        market.reserves[i].symbol,
                        why,
                    )
            for i in set(self._oracle_bad) - set(bad):
                log.warning("oracle price of %s is trusted again", market.reserves[i].symbol)
            self._decide(
                block, "oracle-guard", "-", {"untrusted": {market.reserves[i].symbol: w for i, w in bad.items()}}
            )
            self._oracle_bad = bad
        return bad

    # ------------------------------------------------------------------ execution
    def _worth_wei(self, action: Action) -> int | None:
        """For a liquidation: the most gas (wei) it can burn and still clear min_profit_usd."""
        if not isinstance(action, Liquidate) or self.market is None:
            return None
        min_profit = int(self.settings.liquidate.min_profit_usd * 10**8)
        native_price = self.market.prices_base[self.native_index]
        return max(0, (action.expected_gross_base - min_profit) * 10**18 // native_price)

    def _encode(self, action: Action) -> tuple[TxRequest, tuple[str, str, int]]:
        a = self.adapter
        if isinstance(action, Protect):
            data = (a.encode_repay if action.kind == "repay" else a.encode_supply)(
                action.asset, action.amount, action.account
            )
            desc = f"{action.kind} {action.amount} {action.symbol} for {action.account}"
            return TxRequest(a.pool, data, desc), (action.asset, a.pool, action.amount)
        data = a.encode_liquidation(action.collateral_asset, action.debt_asset, action.account, action.debt_to_cover)
        desc = (
            f"liquidationCall({action.collateral_symbol}, {action.debt_symbol}, {action.account}, "
            f"{action.debt_to_cover})"
        )
        return TxRequest(a.pool, data, desc), (action.debt_asset, a.pool, action.debt_to_cover)

    async def _execute(self, head: Head, action: Action) -> Outcome:
        assert self.market is not None
        out = Outcome(head.number, action)
        tx, approve = self._encode(action)
        try:
            out.results = await self.executor.execute(tx, approve=approve, max_gas_cost_wei=self._worth_wei(action))
            if any(r.sent for r in out.results):
                raw = await self.chain.call(self.adapter.pool, self.adapter.encode_account_data(action.account))
                hf = int(fn("AaveV3Pool", "getUserAccountData").decode(raw)[5])
                out.health_after = float("inf") if hf >= 2**255 else hf / WAD
        except (SkipAction, ExecutionError, TransientError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        except FatalError:
            raise
        gas_wei = sum(r.gas_cost_wei for r in out.results)
        out.gas_cost_base = gas_wei * self.market.prices_base[self.native_index] // 10**18
        self._log_outcome(out)
        return out

    def _decide(self, block: int, kind: str, account: str, inputs: dict[str, Any]) -> None:
        decision_log.info(json.dumps({"block": block, "decision": kind, "account": account, **inputs}, default=str))

    def _log_outcome(self, out: Outcome) -> None:
        assert self.market is not None
        a = out.action
        record: dict[str, Any] = {
            "block": out.block,
            "decision": "protect" if isinstance(a, Protect) else "liquidate",
            "action": asdict(a),
            "prices_base": dict(zip([r.symbol for r in self.market.reserves], self.market.prices_base, strict=True)),
            "results": [asdict(r) for r in out.results],
            "error": out.error,
            "health_after": out.health_after,
            "gas_cost_base": out.gas_cost_base,
        }
        decision_log.info(json.dumps(record, default=str))
        self.report(format_outcome(out, self.market))

    # ------------------------------------------------------------------ loop
    async def run(self, *, blocks: int | None = None) -> None:
        """Poll for new blocks until cancelled (or `blocks` blocks have been processed). Start-up
        (discovery) runs inside the loop, so a transient RPC failure there is retried too."""
        done = 0
        failures = 0
        while blocks is None or done < blocks:
            try:
                report = await self.step()
                failures = 0
                if report is not None:
                    done += 1
                    log.info(
                        "block %d: %d accounts, %d below HF 1, %d actions, %d requests",
                        report.block,
                        report.accounts,
                        report.below_one,
                        len(report.outcomes),
                        report.requests,
                    )
                    continue
            except TransientError as exc:
                failures += 1
                log.warning("transient failure (%d in a row), retrying next block: %s", failures, exc)
            except (FatalError, ConfigError):
                raise
            except Exception:
                failures += 1
                log.exception("unexpected error in the keeper loop (%d in a row)", failures)
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise FatalError(f"{failures} consecutive failed blocks: stopping (see the log above)")
            await asyncio.sleep(self.settings.poll_interval_s)


def usd(base_units: int | float, base_unit: int = 10**8) -> str:
    return f"${base_units / base_unit:,.2f}"


def format_outcome(out: Outcome, market: Market) -> str:
    a = out.action
    after = (
        "?" if out.health_after is None else ("inf" if out.health_after == float("inf") else f"{out.health_after:.4f}")
    )
    sent = [r for r in out.results if r.sent]
    gas = sum(r.gas_used for r in sent)
    status = ("ERROR " + out.error) if out.error else ("dry-run (simulated, not sent)" if not sent else "ok")
    if isinstance(a, Protect):
        unit = market.configs[market.index_of(a.asset)].unit
        return (
            f"[block {out.block}] PROTECT {a.account[:10]}…  HF {a.health_before:.4f} -> {after}  "
            f"{a.kind} {a.amount / unit:,.4f} {a.symbol} ({usd(a.value_base)})  gas {gas:,} "
            f"({usd(out.gas_cost_base)})  {status}"
        )
    cunit = market.configs[market.index_of(a.collateral_asset)].unit
    dunit = market.configs[market.index_of(a.debt_asset)].unit
    profit = a.expected_gross_base - out.gas_cost_base
    return (
        f"[block {out.block}] LIQUIDATE {a.account[:10]}…  HF {a.health_before:.4f} -> {after}  "
        f"repay {a.expected_debt_repaid / dunit:,.4f} {a.debt_symbol}, seize {a.expected_collateral / cunit:,.6f} "
        f"{a.collateral_symbol}  gas {gas:,} ({usd(out.gas_cost_base)})  profit {usd(profit)}  {status}"
    )

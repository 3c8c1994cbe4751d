"""`keeper demo`: an embedded eth-tester chain, our Aave v3- and Compound v3-compatible markets
on the same tokens and price feeds, leveraged accounts on both (two of them yours), a two-leg
price crash, and one keeper protecting and liquidating on both markets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.types import Wei

from keeper.app.loop import Keeper
from keeper.devtools.devchain import Deployment, DevChain
from keeper.execution.executor import Executor
from keeper.execution.signer import Signer
from keeper.protocols.aave_v3.settings import AaveSettings
from keeper.protocols.base import usd
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.settings import CometSettings
from keeper.protocols.synthetix_perps.settings import PerpsSettings
from keeper.risk.intmath import wad_to_health
from keeper.settings import LiquidateSettings, ProtectSettings, Settings
from keeper.sources.chain import Chain

WETH, WBTC, USDC = 10**18, 10**8, 10**6
E18 = 10**18
WBTC_SIZE = E18 // 2
"""Perps sizes have 18 decimals: 0.5 BTC."""
PERPS_TRIGGER, PERPS_TARGET = 2.0, 3.0


@dataclass
class DemoResult:
    protections: int
    liquidations: int
    """Aave liquidationCalls plus Comet absorbs."""
    failures: int
    final_health: dict[str, float]
    """Aave health factor by name."""
    final_comet_health: dict[str, float]
    final_perps_ratio: float
    """Your perps account's margin ratio at the end."""
    perps_target: float
    user: str
    target_hf: float


def make_settings(
    dep: Deployment,
    chain_id: int,
    key: str,
    protect: tuple[str, ...],
    *,
    trigger: float = 1.15,
    target: float = 1.25,
    dry_run_address: str | None = None,
    aave: bool = True,
    comet: bool = True,
    perps: bool = True,
    perps_accounts: tuple[int, ...] = (),
    prefer_perps: tuple[str, ...] = ("add_margin", "reduce"),
    perps_trigger: float = 0.0,
    perps_target: float = 0.0,
) -> Settings:
    """Settings for the test deployment: its Aave market and, if deployed, its Comet and perps markets."""
    perps_settings = None
    if perps and dep.perps:
        perps_settings = PerpsSettings(
            market=dep.perps,
            usd_token=dep.snx_usd,
            native_market_id=100,
            accounts=perps_accounts,
            prefer=prefer_perps,
            settle_orders=True,
            trigger_ratio=perps_trigger,
            target_ratio=perps_target,
        )
    markets: dict[str, tuple[Any, ...]] = {}
    if aave:
        markets["aave"] = (AaveSettings(pool=dep.pool, oracle=dep.oracle),)
    if comet and dep.comet:
        markets["comet"] = (CometSettings(comet=dep.comet),)
    if perps_settings is not None:
        markets["perps"] = (perps_settings,)
    return Settings(
        network="demo",
        chain_id=chain_id,
        rpc_url=SecretStr("eth-tester://in-process"),
        markets=markets,
        multicall3=dep.multicall3,
        native_asset=dep.tokens["WETH"],
        protect=ProtectSettings(accounts=protect, trigger_hf=trigger, target_hf=target),
        liquidate=LiquidateSettings(enabled=True, min_profit_usd=1.0),
        private_key=SecretStr(key),
        address=dry_run_address or Signer(SecretStr(key)).address,
    )


def in_process_web3() -> AsyncWeb3[Any]:
    from web3.providers.eth_tester import AsyncEthereumTesterProvider

    return AsyncWeb3(AsyncEthereumTesterProvider())


async def run_demo(out: Callable[[str], None] = print) -> DemoResult:
    w3 = in_process_web3()
    accounts = list(await w3.eth.accounts)
    deployer, lp, you, *borrowers = accounts[:8]
    dc = DevChain(w3)
    out(
        "Deploying test markets compatible with Aave v3, Compound v3 (USDC) and Synthetix v3 perps (ETH, BTC) "
        "on an embedded chain…"
    )
    dep = await dc.deploy_market(deployer)
    await dc.deploy_comet(dep)
    await dc.deploy_perps(dep)

    keeper_key = "0x" + keccak(text="keeper demo key").hex()
    keeper_addr = Signer(SecretStr(keeper_key)).address
    await w3.eth.send_transaction({"from": deployer, "to": keeper_addr, "value": Wei(50 * 10**18)})
    await dc.mint(dep, "USDC", keeper_addr, 110_000 * USDC)
    await dc.mint(dep, "WETH", keeper_addr, 4 * WETH)
    await dc.send("MintableERC20", dep.snx_usd, "mint", deployer, keeper_addr, 2_000 * E18)

    out("Opening positions…")
    await dc.supply(dep, "USDC", lp, 3_000_000 * USDC)
    await dc.supply(dep, "WETH", lp, 1_000 * WETH)
    await dc.supply(dep, "WBTC", lp, 50 * WBTC)
    names: dict[str, str] = {
        you: "you",
        borrowers[0]: "alice",
        borrowers[1]: "bob",
        borrowers[2]: "carol",
        borrowers[3]: "dave",
        borrowers[4]: "erin",
        lp: "lp",
    }
    book = [  # (who, collateral, amount, debt, amount)
        (you, "WETH", 10 * WETH, "USDC", 21_000 * USDC),
        (borrowers[0], "WETH", 5 * WETH, "USDC", 11_500 * USDC),
        (borrowers[1], "WBTC", WBTC // 2, "USDC", 21_000 * USDC),
        (borrowers[2], "WETH", 8 * WETH, "USDC", 18_500 * USDC),
        (borrowers[3], "WETH", 30 * WETH, "USDC", 30_000 * USDC),
        (borrowers[4], "USDC", 40_000 * USDC, "WETH", 10 * WETH),
    ]
    for who, c, ca, d, da in book:
        await dc.supply(dep, c, who, ca)
        await dc.borrow(dep, d, who, da)
    await dc.comet_supply(dep, "USDC", lp, 3_000_000 * USDC)
    comet_book = [  # Compound v3 (base USDC): (who, collateral, amount, USDC borrowed)
        (you, "WETH", 10 * WETH, 22_000 * USDC),
        (borrowers[0], "WETH", 5 * WETH, 12_000 * USDC),
        (borrowers[1], "WBTC", WBTC // 2, 20_500 * USDC),
        (borrowers[2], "WETH", 8 * WETH, 19_900 * USDC),
    ]
    for who, c, ca, da in comet_book:
        await dc.comet_supply(dep, c, who, ca)
        await dc.comet_borrow(dep, who, da)
    await dc.advance_time(30 * 86_400)
    await dc.heartbeat(dep)
    # perps, opened now: your 0.5 BTC long on 4,500 snxUSD of margin (the keeper may add margin
    # to it) and bob's 10 ETH long on 3,000
    your_perp = await dc.perps_open(dep, you, 4_500 * E18, 200, WBTC_SIZE, keeper=keeper_addr)
    bobs_perp = await dc.perps_open(dep, borrowers[1], 3_000 * E18, 100, 10 * E18)
    perps_names = {your_perp: "you", bobs_perp: "bob"}
    out("30 days pass; debt accrues interest; the price feeds post their heartbeat rounds.")

    settings = make_settings(
        dep,
        await w3.eth.chain_id,
        keeper_key,
        (you,),
        perps_accounts=(your_perp,),
        perps_trigger=PERPS_TRIGGER,
        perps_target=PERPS_TARGET,
    )
    chain = Chain(w3, dep.multicall3)
    executor = Executor(chain, settings.execution, keeper_addr, Signer(SecretStr(keeper_key)), dry_run=False)
    keeper = Keeper(settings, chain, executor, report=out)
    await keeper.start()
    out(
        f"Keeper {keeper_addr[:10]}… watches {sum(len(w.book or []) for w in keeper.watches)} positions on "
        f"{len(keeper.watches)} markets; protects 'you' (lending: trigger HF {settings.protect.trigger_hf}, "
        f"target {settings.protect.target_hf}; perps: margin ratio {PERPS_TRIGGER} -> {PERPS_TARGET}); "
        "liquidates the rest."
    )
    comet_names: dict[str, str] = {str(who): names[who] for who, *_ in comet_book}
    await _print_table(out, dc, dep, names)
    await _print_comet_table(out, keeper, comet_names)
    await _print_perps_table(out, dc, dep, perps_names)

    for leg, moves in enumerate([{"WETH": 2_760.0}, {"WETH": 2_450.0, "WBTC": 52_000.0}], start=1):
        out("")
        out(f"=== Crash leg {leg}: " + ", ".join(f"{s} -> ${p:,.0f}" for s, p in moves.items()) + " ===")
        for sym, price in moves.items():
            await dc.set_price(dep, sym, price)
        for _ in range(6):
            report = await keeper.step()
            if report is None or not report.outcomes:
                break
        await _print_table(out, dc, dep, names)
        await _print_comet_table(out, keeper, comet_names)
        await _print_perps_table(out, dc, dep, perps_names)

    protections = [o for o in keeper.history if o.action.protective and o.action.after_previous is False and o.ok]
    liquidations = [o for o in keeper.history if o.action.liquidation and o.ok]
    failures = [o for o in keeper.history if not o.ok]
    gas = sum(o.gas_cost_usd for o in keeper.history)
    profit = sum(o.action.gross_profit_base / o.price_scale for o in keeper.history if o.ok) - sum(
        o.gas_cost_usd for o in keeper.history if not o.action.protective
    )
    final = {names[a]: (await dc.account_data(dep, a))[5] / 1e18 for a in names if a != lp}
    final_comet = {name: hf for name, (_, _, hf) in (await _comet_rows(keeper, comet_names)).items()}
    out("")
    out("=== Summary ===")
    final_perps = await _perps_ratio(dc, dep, your_perp)
    out(
        f"protective actions: {len(protections)}   liquidations (Aave, Comet absorbs, perps): {len(liquidations)}   "
        f"failed: {len(failures)}"
    )
    out(f"gas spent: {usd(gas, 1)}   liquidation profit after gas: {usd(profit, 1)}")
    out(
        f"your health factor: Aave {final['you']:.4f}, Compound {final_comet['you']:.4f} "
        f"(target {settings.protect.target_hf}); perps margin ratio {final_perps:.4f} (target {PERPS_TARGET})"
    )
    return DemoResult(
        len(protections),
        len(liquidations),
        len(failures),
        final,
        final_comet,
        final_perps,
        PERPS_TARGET,
        you,
        settings.protect.target_hf,
    )


async def _print_table(out: Callable[[str], None], dc: DevChain, dep: Deployment, names: dict[str, str]) -> None:
    out(f"  {'account':8} {'collateral':>14} {'debt':>14} {'health':>9}")
    out("  Aave v3")
    for addr, name in names.items():
        if name == "lp":
            continue
        c, d, _, _, _, hf = await dc.account_data(dep, addr)
        hf_s = "no debt" if d == 0 else f"{hf / 1e18:.4f}"
        flag = "  <- liquidatable" if d and hf < 10**18 else ""
        out(f"  {name:8} {usd(c):>14} {usd(d):>14} {hf_s:>9}{flag}")


async def _comet_rows(keeper: Keeper, names: Mapping[str, str]) -> dict[str, tuple[int, int, float]]:
    """name -> (collateral value, debt value, HF) on the Comet market, read at the latest block."""
    (w,) = [w for w in keeper.watches if w.protocol == comet.NAME]
    market = getattr(w.adapter, "market", None)
    assert market is not None
    market = market.accrued()
    block = (await keeper.chain.head()).number
    positions = await w.read_positions(keeper.chain, list(names), block)
    rows = {}
    for pos in positions:
        coll = sum(comet.mul_price(pos.collateral[i], market.prices[i], a.scale) for i, a in enumerate(market.assets))
        hf = comet.health_factor_wad(pos, market)
        rows[names[pos.user]] = (
            coll,
            comet.debt_value(pos, market),
            wad_to_health(hf),
        )
    return rows


async def _print_comet_table(out: Callable[[str], None], keeper: Keeper, names: Mapping[str, str]) -> None:
    out("  Compound v3 (USDC market)")
    for name, (c, d, hf) in (await _comet_rows(keeper, names)).items():
        hf_s = "no debt" if d == 0 else f"{hf:.4f}"
        flag = "  <- liquidatable" if d and hf < 1 else ""
        out(f"  {name:8} {usd(c):>14} {usd(d):>14} {hf_s:>9}{flag}")


async def _perps_ratio(dc: DevChain, dep: Deployment, account_id: int) -> float:
    available = await dc.view("PerpsMarket", dep.perps, "getAvailableMargin", account_id)
    _, mm, _ = await dc.view("PerpsMarket", dep.perps, "getRequiredMargins", account_id)
    return float("inf") if mm == 0 else max(available, 0) / mm


async def _print_perps_table(out: Callable[[str], None], dc: DevChain, dep: Deployment, names: dict[int, str]) -> None:
    out("  Synthetix v3 perps (margin ratio: available margin / maintenance margin + reward)")
    for account_id, name in names.items():
        available = await dc.view("PerpsMarket", dep.perps, "getAvailableMargin", account_id)
        _, mm, _ = await dc.view("PerpsMarket", dep.perps, "getRequiredMargins", account_id)
        ratio = "no position" if mm == 0 else f"{max(available, 0) / mm:.4f}"
        flag = "  <- liquidatable" if mm and available < mm else ""
        out(f"  {name:8} {usd(available, E18):>14} {usd(mm, E18):>14} {ratio:>9}{flag}")

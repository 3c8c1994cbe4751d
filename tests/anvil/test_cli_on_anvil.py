"""The `keeper` command over real JSON-RPC (HTTP) against anvil, with config/local.toml."""

import asyncio
import os
import subprocess
import sys
import tomllib

from eth_account import Account
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import Deployment, DevChain
from keeper.devtools.relay import LocalRelay
from tests.anvil.conftest import DEV_KEYS, ROOT

E18, E6 = 10**18, 10**6
RELAY_AUTH = "0x" + "42" * 32


def keeper_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "KEEPER_OPS_LISTEN": "",  # no operations server (tests/anvil/test_operations.py runs one)
    }
    return subprocess.run(
        [sys.executable, "-m", "keeper", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=timeout,
        cwd=ROOT,
    )


async def deploy_and_open(url: str) -> tuple[DevChain, Deployment, str, str]:
    """Both test markets from `keeper deploy-testnet`, with one liquidatable account on each."""
    r = keeper_cli("deploy-testnet", "--rpc-url", url, env={})
    assert r.returncode == 0, r.stderr
    local = tomllib.loads((ROOT / "config" / "local.toml").read_text())
    deployed = tomllib.loads(r.stdout)
    for key in ("aave", "comet", "perps", "multicall3"):
        assert deployed[key] == local[key], "config/local.toml no longer matches `keeper deploy-testnet`"
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    accounts = list(await w3.eth.accounts)
    dc = DevChain(w3)
    # the deployment just made, rebuilt from the config's addresses
    dep = Deployment(
        pool=local["aave"]["pool"],
        oracle=local["aave"]["oracle"],
        multicall3=local["multicall3"],
        deployer=accounts[0],
        comet=local["comet"]["comet"],
        perps=local["perps"]["market"],
        snx_usd=local["perps"]["usd_token"],
    )
    for part in deployed_comment(r.stdout, "tokens"):
        dep.tokens[part[0]] = part[1]
    for part in deployed_comment(r.stdout, "aggregators"):
        dep.aggregators[part[0]] = part[1]
    lp, victim, comet_victim = accounts[1], accounts[2], accounts[3]
    await dc.supply(dep, "USDC", lp, 1_000_000 * E6)
    await dc.comet_supply(dep, "USDC", lp, 1_000_000 * E6)
    await dc.supply(dep, "WETH", victim, 10 * E18)
    await dc.borrow(dep, "USDC", victim, 24_000 * E6)
    await dc.comet_supply(dep, "WETH", comet_victim, 10 * E18)
    await dc.comet_borrow(dep, comet_victim, 24_500 * E6)
    await dc.perps_open(dep, comet_victim, 3_000 * E18, 100, 10 * E18)  # 10x long ETH: account #1
    await dc.set_price(dep, "WETH", 2_650.0)
    return dc, dep, victim, comet_victim


def deployed_comment(text: str, name: str) -> list[tuple[str, str]]:
    line = next(x for x in text.splitlines() if x.startswith(f"# {name}:"))
    return [tuple(p.strip().split("=")) for p in line.split(":", 1)[1].split(",")]  # type: ignore[misc]


async def test_status_dry_run_and_live_liquidation_over_http(anvil, tmp_path):
    dc, dep, victim, comet_victim = await deploy_and_open(anvil)
    liquidator = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", liquidator, 100_000 * E6)
    pool = dc.contract("Pool", dep.pool)
    comet = dc.contract("Comet", dep.comet)
    assert (await pool.functions.getUserAccountData(victim).call())[5] < E18
    assert await comet.functions.isLiquidatable(comet_victim).call()

    await dc.w3.provider.make_request("evm_setIntervalMining", [1])  # blocks for `run --blocks N`
    env = {"KEEPER_RPC_URL": anvil, "KEEPER_EXECUTION_JOURNAL_PATH": str(tmp_path / "journal.sqlite")}
    r = keeper_cli("status", "--network", "local", env={**env, "KEEPER_ADDRESS": liquidator})
    assert r.returncode == 0, r.stderr
    assert "aave-v3 " in r.stdout and "comet " in r.stdout and "perps " in r.stdout, r.stdout
    assert any(line.startswith("#1 ") and "liquidatable" in line for line in r.stdout.splitlines()), r.stdout
    across = r.stdout.split("riskiest across 3 markets", 1)[1].splitlines()[2:5]
    assert {line.split()[0] for line in across} == {"aave-v3", "comet", "perps"}, r.stdout  # 3 liquidatable
    row = next(line for line in r.stdout.splitlines() if line.startswith(victim))
    assert "0.91" in row and "liquidatable" in row, r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith(comet_victim))
    assert "0.97" in row and "liquidatable" in row, r.stdout

    nonce = await dc.w3.eth.get_transaction_count(liquidator)
    r = keeper_cli("run", "--network", "local", "--dry-run", "--blocks", "1", env={**env, "KEEPER_ADDRESS": liquidator})
    assert r.returncode == 0, r.stderr
    assert "LIQUIDATE" in r.stdout and "ABSORB" in r.stdout and "dry-run" in r.stdout, r.stdout
    assert await dc.w3.eth.get_transaction_count(liquidator) == nonce

    relay = LocalRelay(anvil, require_auth=True, mine=False)  # the node mines every second on its own
    private = {"KEEPER_EXECUTION_PRIVATE_RPC_URL": await relay.start(), "KEEPER_RELAY_AUTH_KEY": RELAY_AUTH}
    try:
        live = {**env, **private, "KEEPER_PRIVATE_KEY": DEV_KEYS[9]}
        r = await asyncio.to_thread(keeper_cli, "run", "--network", "local", "--blocks", "2", env=live)
    finally:
        await relay.stop()
    assert r.returncode == 0, r.stderr
    assert "sending through the private relay at 127.0.0.1" in r.stderr, r.stderr
    assert relay.signers and set(relay.signers) == {Account.from_key(RELAY_AUTH).address}
    assert len(relay.included) >= 4  # the liquidation, the absorb and its buy, the perps liquidation
    assert "LIQUIDATE" in r.stdout and " ok" in r.stdout, r.stdout
    assert "ABSORB" in r.stdout and "BUY" in r.stdout, r.stdout
    assert "perps LIQUIDATE #1" in r.stdout, r.stdout
    assert (await pool.functions.getUserAccountData(victim).call())[5] >= E18
    assert not await comet.functions.isLiquidatable(comet_victim).call()
    assert await dc.balance(dep, "WETH", liquidator) > 10 * E18  # Aave's seized WETH + the 10 WETH bought
    assert DEV_KEYS[9][2:] not in r.stdout + r.stderr and RELAY_AUTH[2:] not in r.stdout + r.stderr


async def test_wrong_chain_id_exits_3(anvil):
    r = keeper_cli(
        "status",
        "--network",
        "local",
        env={"KEEPER_RPC_URL": anvil, "KEEPER_CHAIN_ID": "1", "KEEPER_ADDRESS": Account.from_key(DEV_KEYS[9]).address},
    )
    assert r.returncode == 3
    assert "is on chain id 31337, not 1: refusing to start" in r.stderr

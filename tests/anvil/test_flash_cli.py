"""`keeper deploy-liquidator` and a flash-funded `keeper run` over HTTP against anvil, on the
markets and Uniswap v3 pools of `keeper deploy-testnet` (config/local.toml): the dry run sends
nothing, the deployment prints the [flash] lines, a liquidator owned by another key or a router
without code is refused with the setting named, and the keeper, holding no USDC, liquidates the
Aave account through the contract and keeps the profit."""

import re

from eth_account import Account
from web3 import AsyncWeb3

from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from tests.anvil.conftest import DEV_KEYS, require_real_bytecode
from tests.anvil.test_cli_on_anvil import E18, deploy_and_open, keeper_cli


async def test_deploy_liquidator_then_liquidate_without_inventory(anvil, tmp_path):
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    dc, dep, victim, _ = await deploy_and_open(anvil)
    keeper = Account.from_key(DEV_KEYS[9]).address
    assert await dc.balance(dep, "USDC", keeper) == 0
    env = {"KEEPER_RPC_URL": anvil, "KEEPER_EXECUTION_JOURNAL_PATH": str(tmp_path / "journal.sqlite")}
    w3: AsyncWeb3 = dc.w3

    nonce = await w3.eth.get_transaction_count(keeper)
    r = keeper_cli("deploy-liquidator", "--network", "local", "--dry-run", env={**env, "KEEPER_ADDRESS": keeper})
    assert r.returncode == 0, r.stderr
    assert "dry-run: simulated only, nothing sent" in r.stdout, r.stdout
    assert await w3.eth.get_transaction_count(keeper) == nonce

    for router, why in (("0x12", "--router / [flash] router: not an address"),
                        (keeper, "no contract code at the SwapRouter")):  # fmt: skip
        dry = ("deploy-liquidator", "--network", "local", "--dry-run", "--router", router)
        r = keeper_cli(*dry, env={**env, "KEEPER_ADDRESS": keeper})
        assert r.returncode == 2 and why in r.stderr, r.stderr

    r = keeper_cli("deploy-liquidator", "--network", "local", env={**env, "KEEPER_PRIVATE_KEY": DEV_KEYS[9]})
    assert r.returncode == 0, r.stderr
    found = re.search(r'^liquidator = "(0x[0-9a-fA-F]{40})"$', r.stdout, re.M)
    assert found and "[flash]" in r.stdout, r.stdout
    liquidator = found.group(1)
    assert await w3.eth.get_code(liquidator)
    assert DEV_KEYS[9][2:] not in r.stdout + r.stderr

    flash = {**env, "KEEPER_FLASH_FUNDING": "flash", "KEEPER_FLASH_LIQUIDATOR": liquidator}
    r = keeper_cli("run", "--network", "local", "--blocks", "1", env={**flash, "KEEPER_PRIVATE_KEY": DEV_KEYS[0]})
    assert r.returncode == 2 and "[flash] liquidator" in r.stderr and "is owned by" in r.stderr, r.stderr

    await w3.provider.make_request("evm_setIntervalMining", [1])
    r = keeper_cli("run", "--network", "local", "--blocks", "2", env={**flash, "KEEPER_PRIVATE_KEY": DEV_KEYS[9]})
    assert r.returncode == 0, r.stderr
    assert "FLASH LIQUIDATE" in r.stdout and "profit" in r.stdout and " ok" in r.stdout, r.stdout
    assert "to the owner" in r.stdout, r.stdout  # the chain's figures, from the FlashLiquidation event
    # Aave and Comet both sell WETH for USDC: one market per pair and block, the other the next block
    assert "WETH is sold by another market's flash liquidation this block" in r.stderr, r.stderr[-3000:]
    assert r.stdout.count("FLASH LIQUIDATE") == 1 and r.stdout.count("FLASH ABSORB") == 1, r.stdout
    pool = dc.contract("Pool", dep.pool)
    assert (await pool.functions.getUserAccountData(victim).call())[5] >= E18, r.stdout + r.stderr[-3000:]
    sent = [float(x.replace(",", "")) for x in re.findall(r"profit ([0-9,.]+) USDC to the owner", r.stdout)]
    assert sent and all(x > 0 for x in sent), r.stdout  # with no USDC held before (Comet buys may spend it)
    assert await dc.balance(dep, "USDC", liquidator) == 0 and await dc.balance(dep, "WETH", liquidator) == 0

"""The deleverage lever from the command line, on the markets and Uniswap v3 pools of `keeper
deploy-testnet` (config/local.toml): `keeper deploy-deleverager` prints the [protect] line,
`keeper status` shows the grant missing, `keeper protect-setup` simulates it and sends nothing,
`--send` grants it, `status` shows it granted, `keeper run --dry-run` simulates the deleverage
and sends nothing, `keeper run` brings the keeper's own position from
HF 1.058 to its target in one transaction with no USDC in the wallet (the line shows the
prediction and the chain's figures), and `--revoke --send` takes the approval back."""

import re

from eth_account import Account
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import Deployment, DevChain, artifacts
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from tests.anvil.conftest import DEV_KEYS, require_real_bytecode
from tests.anvil.test_cli_on_anvil import E18, ROOT, deployed_comment, keeper_cli

E6 = 10**6


async def test_deploy_grant_deleverage_and_revoke_from_the_cli(anvil, tmp_path):
    import tomllib

    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    r = keeper_cli("deploy-testnet", "--rpc-url", anvil, env={})
    assert r.returncode == 0, r.stderr
    local = tomllib.loads((ROOT / "config" / "local.toml").read_text())
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    accounts = list(await w3.eth.accounts)
    dep = Deployment(pool=local["aave"]["pool"], oracle=local["aave"]["oracle"], multicall3=local["multicall3"],
                     deployer=accounts[0])  # fmt: skip
    for symbol, address in deployed_comment(r.stdout, "tokens"):
        dep.tokens[symbol] = address
    for symbol, address in deployed_comment(r.stdout, "aggregators"):
        dep.aggregators[symbol] = address
    dc, me, lp = DevChain(w3), Account.from_key(DEV_KEYS[9]).address, accounts[1]
    await dc.supply(dep, "USDC", lp, 1_000_000 * E6)
    await dc.supply(dep, "WETH", me, 10 * E18)
    await dc.borrow(dep, "USDC", me, 20_000 * E6)  # HF 1.245 at $3,000
    usdc = w3.eth.contract(address=dep.tokens["USDC"], abi=artifacts()["contracts"]["MintableERC20"]["abi"])
    await w3.eth.wait_for_transaction_receipt(await usdc.functions.transfer(lp, 20_000 * E6).transact({"from": me}))
    await dc.set_price(dep, "WETH", 2_550.0)  # HF 1.058
    env = {"KEEPER_RPC_URL": anvil, "KEEPER_EXECUTION_JOURNAL_PATH": str(tmp_path / "journal.sqlite")}
    keyed = {**env, "KEEPER_PRIVATE_KEY": DEV_KEYS[9]}

    r = keeper_cli("deploy-deleverager", "--network", "local", env=keyed)
    assert r.returncode == 0, r.stderr
    found = re.search(r'^deleverager = "(0x[0-9a-fA-F]{40})"$', r.stdout, re.M)
    assert found and "[protect]" in r.stdout, r.stdout
    protect = {"KEEPER_PROTECT_ACCOUNTS": f'["{me}"]', "KEEPER_PROTECT_DELEVERAGER": found.group(1),
               "KEEPER_PROTECT_TARGET_HF": "1.25"}  # fmt: skip
    watching = {**env, **protect, "KEEPER_ADDRESS": me}

    r = keeper_cli("status", "--network", "local", env=watching)
    assert r.returncode == 0 and f"deleverage of {me}: aWETH approval missing" in r.stdout, r.stdout + r.stderr
    nonce = await w3.eth.get_transaction_count(me)
    r = keeper_cli("protect-setup", "--network", "local", env=watching)
    assert r.returncode == 0 and "dry-run: simulated only, nothing sent" in r.stdout, r.stdout + r.stderr
    assert await w3.eth.get_transaction_count(me) == nonce
    r = keeper_cli("protect-setup", "--network", "local", "--send", env={**keyed, **protect})
    assert r.returncode == 0 and "status 1" in r.stdout, r.stdout + r.stderr
    r = keeper_cli("status", "--network", "local", env=watching)
    assert f"deleverage of {me}: aWETH approval granted" in r.stdout, r.stdout

    await w3.provider.make_request("evm_setIntervalMining", [1])
    nonce = await w3.eth.get_transaction_count(me)
    r = keeper_cli("run", "--network", "local", "--dry-run", "--blocks", "1", env=watching)
    line = next((x for x in r.stdout.splitlines() if "DELEVERAGE" in x), "")
    assert r.returncode == 0 and "dry-run (simulated, not sent)" in line, r.stdout + r.stderr[-3000:]
    assert await w3.eth.get_transaction_count(me) == nonce

    r = keeper_cli("run", "--network", "local", "--blocks", "2", env={**keyed, **protect})
    assert r.returncode == 0, r.stderr
    line = next((x for x in r.stdout.splitlines() if "DELEVERAGE" in x), "")
    assert " ok" in line and "chain: Deleverager repaid" in line, r.stdout + r.stderr[-3000:]
    hf = re.search(r"health factor (\d\.\d+) \(predicted (\d\.\d+)\)", line)
    assert hf and 1.20 <= float(hf.group(1)) <= 1.30 and abs(float(hf.group(1)) - float(hf.group(2))) < 1e-3, line
    pool = w3.eth.contract(address=dep.pool, abi=artifacts()["contracts"]["Pool"]["abi"])
    assert 1.20 <= (await pool.functions.getUserAccountData(me).call())[5] / E18 <= 1.30

    r = keeper_cli("protect-setup", "--network", "local", "--revoke", "--send", env={**keyed, **protect})
    assert r.returncode == 0 and "status 1" in r.stdout, r.stdout + r.stderr
    a_weth = next(line.split(" to ")[1].split()[0] for line in r.stdout.splitlines() if "revoke: from" in line)
    erc20 = w3.eth.contract(address=a_weth, abi=artifacts()["contracts"]["MintableERC20"]["abi"])
    assert await erc20.functions.allowance(me, found.group(1)).call() == 0
    print(line)

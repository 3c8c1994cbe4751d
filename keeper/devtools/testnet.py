"""`keeper deploy-testnet`: our test markets on a dev node, and the network config that matches them."""

from __future__ import annotations

from web3 import AsyncWeb3
from web3.exceptions import Web3Exception
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import Deployment, DevChain
from keeper.devtools.flashkit import FlashKit, deploy_flash
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.errors import ConfigError


def config_toml(dep: Deployment, chain_id: int, network: str = "local", kit: FlashKit | None = None) -> str:
    """A config/<network>.toml for a deployment of the test markets (and of Uniswap v3, if `kit`)."""
    more = f'\n[comet]\ncomet = "{dep.comet}"\nstart_block = 0\n' if dep.comet else ""
    if dep.perps:
        more += (
            f'\n[perps]\nmarket = "{dep.perps}"\nusd_token = "{dep.snx_usd}"  # snxUSD\n'
            "native_market_id = 100  # ETH\naccounts = []\nsettle_orders = true  # our test market settles on chain\n"
            "start_block = 0\n"
        )
    return f"""# Our Aave v3-, Compound v3- and Synthetix v3 perps-compatible test markets as
# `keeper deploy-testnet` deploys them on a fresh anvil (deployer = anvil's first dev account,
# so the addresses are the same every time).
network = "{network}"
chain_id = {chain_id}
native_asset = "{dep.tokens["WETH"]}"  # WETH
poll_interval_s = 1.0
multicall3 = "{dep.multicall3}"

[aave]
pool = "{dep.pool}"
oracle = "{dep.oracle}"
start_block = 0
{more}
[protect]
accounts = []
trigger_hf = 1.15
target_hf = 1.30
prefer = ["repay", "supply"]

[liquidate]
enabled = true
min_profit_usd = 1.0

[oracle]
max_age_s = 90000   # seconds: heartbeat + slack; older rounds are not acted on

[execution]
max_fee_gwei = 100.0
priority_fee_gwei = 1.0
{_flash_table(kit)}
# tokens: {", ".join(f"{s}={a}" for s, a in dep.tokens.items())}
# aggregators: {", ".join(f"{s}={a}" for s, a in dep.aggregators.items())}
"""


def _flash_table(kit: FlashKit | None) -> str:
    if kit is None:
        why = uniswap_missing() or "not deployed"
        return f"\n# [flash]: Uniswap v3 not deployed ({why}): liquidations are funded from the wallet\n"
    return f"""
# Flash liquidations (no inventory): deploy the liquidator with the keeper's key,
#   keeper deploy-liquidator --network local
# then set liquidator = "<its address>" and funding = "auto" (or "flash").
[flash]
funding = "wallet"
router = "{kit.uni.router}"
factory = "{kit.uni.factory}"
quoter = "{kit.uni.quoter}"
"""


async def deploy_testnet(rpc_url: str) -> str:
    """Deploy the test markets (Aave v3, Comet, perps) with the node's first unlocked account; return
    their config TOML."""
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    try:
        accounts = await w3.eth.accounts
    except (Web3Exception, OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach a dev node at {rpc_url}: {exc}") from None
    dc = DevChain(w3)
    dep = await dc.deploy_market(accounts[0])
    await dc.deploy_comet(dep)
    await dc.deploy_perps(dep)
    kit = None
    if uniswap_missing() is None:  # after the markets: their addresses stay what config/local.toml says
        prices = {s.symbol: s.price_usd for s in dep.specs.values()}
        kit = await deploy_flash(w3, dc, dep, None, accounts[0], prices)
    return config_toml(dep, await w3.eth.chain_id, kit=kit)

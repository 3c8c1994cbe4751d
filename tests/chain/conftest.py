"""eth-tester chain tests: deploy the test market once per session, snapshot/revert per test."""

from dataclasses import dataclass

import pytest
import pytest_asyncio
from eth_account import Account
from eth_utils import keccak
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import Deployment, DevChain
from keeper.execution.executor import Executor
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain

KEEPER_KEY = "0x" + keccak(text="keeper test key").hex()


@dataclass
class Env:
    w3: AsyncWeb3
    dc: DevChain
    dep: Deployment
    accounts: list[str]
    keeper_key: str
    keeper_address: str

    def unlock_keeper(self) -> None:
        """Let the test send from the keeper's address (eth-tester keeps added accounts across snapshots)."""
        tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        if self.keeper_address not in tester.get_accounts():
            tester.add_account(self.keeper_key)

    def keeper(
        self,
        *,
        protect: tuple[str, ...] = (),
        dry_run: bool = False,
        trigger: float = 1.15,
        target: float = 1.30,
        aave: bool = True,
        comet: bool = True,
        perps: bool = True,
        perps_accounts: tuple[int, ...] = (),
        prefer_perps: tuple[str, ...] = ("add_margin", "reduce"),
        mode: str = "static",
    ) -> Keeper:
        settings = make_settings(
            self.dep,
            131277322940537,
            self.keeper_key,
            protect,
            trigger=trigger,
            target=target,
            aave=aave,
            comet=comet,
            perps=perps,
            perps_accounts=perps_accounts,
            prefer_perps=prefer_perps,
        )
        settings = settings.model_copy(update={"protect": settings.protect.model_copy(update={"mode": mode})})
        chain = Chain(self.w3, self.dep.multicall3)
        signer = Signer(SecretStr(self.keeper_key))
        executor = Executor(chain, settings.execution, self.keeper_address, signer, dry_run=dry_run)
        return Keeper(settings, chain, executor)


@pytest_asyncio.fixture(scope="session")
async def env_session() -> Env:
    w3 = AsyncWeb3(AsyncEthereumTesterProvider())
    accounts = list(await w3.eth.accounts)
    dc = DevChain(w3)
    dep = await dc.deploy_market(accounts[0])
    addr = Account.from_key(KEEPER_KEY).address
    await w3.eth.send_transaction({"from": accounts[0], "to": addr, "value": 100 * 10**18})
    lp = accounts[1]
    await dc.supply(dep, "USDC", lp, 5_000_000 * 10**6)
    await dc.supply(dep, "WETH", lp, 2_000 * 10**18)
    await dc.supply(dep, "WBTC", lp, 100 * 10**8)
    await dc.deploy_comet(dep)
    await dc.comet_supply(dep, "USDC", lp, 5_000_000 * 10**6)
    await dc.deploy_perps(dep)
    return Env(w3, dc, dep, accounts, KEEPER_KEY, addr)


@pytest_asyncio.fixture
async def env(env_session: Env):
    tester = env_session.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snap = tester.take_snapshot()
    yield env_session
    tester.revert_to_snapshot(snap)


@pytest.fixture
def chain_id() -> int:
    return 131277322940537

"""`keeper deploy-liquidator` and `keeper deploy-deleverager`: deploy keeper's FlashLiquidator or
Deleverager with the keeper's key as its owner, simulated first, and print the settings lines that
use it ([flash] liquidator, [protect] deleverager). Dry-run simulates and sends nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from keeper.app.runtime import connect
from keeper.errors import ConfigError, KeeperError
from keeper.execution.signer import Signer
from keeper.settings.load import load_settings
from keeper.sources.chain import Chain


def liquidator_initcode(router: str, contract: str = "FlashLiquidator") -> bytes:
    from keeper.devtools.devchain import artifacts

    bytecode = artifacts()["contracts"][contract]["bytecode"]
    return bytes.fromhex(bytecode[2:]) + encode(["address"], [to_checksum_address(router)])


def created_address(sender: str, nonce: int) -> str:
    """CREATE's address: keccak(rlp([sender, nonce]))[12:]."""
    import rlp

    return str(to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]))


async def deploy_liquidator(
    network: str,
    env_file: str | None,
    *,
    router: str | None,
    dry_run: bool,
    timeout_s: float = 180.0,
    contract: str = "FlashLiquidator",
) -> str:
    """Deploys (or, dry-run, simulates) and returns the text to print."""
    settings = load_settings(network, env_file, require_key=not dry_run)
    router = router or settings.flash.router
    if not router:
        command = "deploy-liquidator" if contract == "FlashLiquidator" else "deploy-deleverager"
        raise ConfigError(f"{command} needs the Uniswap v3 SwapRouter: --router 0x... or [flash] router")
    try:
        router = str(to_checksum_address(router))
    except ValueError:
        raise ConfigError(f"--router / [flash] router: not an address: {router!r}") from None
    assert settings.address is not None
    chain = Chain(connect(settings), settings.multicall3)
    try:
        await chain.check_chain_id(settings.chain_id)
        if not await chain.code(router):
            raise ConfigError(f"no contract code at the SwapRouter {router} on chain {settings.chain_id}")
        initcode = liquidator_initcode(router, contract)
        try:
            gas, runtime = await chain.estimate_creation(settings.address, initcode)
        except ContractLogicError as exc:  # the node's revert, named (e.g. out of funds for gas)
            raise KeeperError(f"the deployment's simulation reverted: {exc}") from None
        if not runtime:
            raise KeeperError("the deployment's simulation returned no code")
        nonce = await chain.nonce(settings.address, "pending")
        address = created_address(settings.address, nonce)
        lines = [f"{contract}: owner {settings.address}, router {router}, {len(runtime)} bytes, gas {gas:,}"]
        if dry_run:
            lines.append(f"dry-run: simulated only, nothing sent (it would be at {address}, nonce {nonce})")
            return "\n".join(lines)
        head = await chain.head()
        ex = settings.execution
        tip = int(ex.priority_fee_gwei * 10**9)
        max_fee = min(2 * head.base_fee_wei + tip, int(ex.max_fee_gwei * 10**9))
        if gas * max_fee > ex.max_gas_spend_native * 10**18:
            raise KeeperError(
                f"deploying may cost {gas * max_fee / 1e18:.5f} native coin, above [execution] "
                f"max_gas_spend_native {ex.max_gas_spend_native}: nothing sent"
            )
        assert settings.private_key is not None
        tx_hash, raw = Signer(settings.private_key).sign(
            settings.chain_id, nonce, tip, max_fee, int(gas * ex.gas_limit_multiplier), "", 0, initcode
        )
        sent = await chain.send_raw(raw)
        if sent.refused:
            raise KeeperError(f"the node refused the deployment ({sent.kind}: {sent.detail})")
        receipt = await _receipt(chain, tx_hash, timeout_s)
        if receipt is None:
            raise KeeperError(f"the deployment {tx_hash} was not mined within {timeout_s:g} s (it may still be)")
        if receipt.get("status") != 1:
            raise KeeperError(f"the deployment {tx_hash} reverted in block {receipt.get('blockNumber')}")
        deployed = str(to_checksum_address(receipt["contractAddress"]))
        lines.append(f"deployed at {deployed} in block {receipt['blockNumber']} (tx {tx_hash}, gas used "
                     f"{receipt['gasUsed']:,})")  # fmt: skip
        if contract == "FlashLiquidator":
            lines += ["", "[flash]", f'liquidator = "{deployed}"', f'router = "{router}"']
        else:
            lines += ["", "[protect]", f'deleverager = "{deployed}"', "", "[flash]", f'router = "{router}"']
        return "\n".join(lines)
    finally:
        await chain.close()


async def _receipt(chain: Chain, tx_hash: str, timeout_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        receipt = await chain.receipt(tx_hash)
        if receipt is not None:
            return receipt
        await asyncio.sleep(1.0)
    return None

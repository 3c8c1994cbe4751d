"""Typed settings (pydantic v2): what `config/<network>.toml` and the environment say, validated
once into frozen models and passed down. Opens no connections and reads no files (the loader,
keeper.settings.load, does). Strict: a TOML string is never taken for a number or a boolean, nor
a fraction for an integer. Secrets are `SecretStr`: they never print.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from Crypto.Hash import keccak
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
"""Multicall3's address on Ethereum and most EVM chains."""
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def checksum(address: str) -> str:
    """EIP-55 mixed-case checksum of a 0x-prefixed hex address (keccak via pycryptodome, so that
    importing the settings loads no network machinery)."""
    body = address[2:].lower()
    digest = keccak.new(digest_bits=256, data=body.encode()).hexdigest()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(body, digest[:40], strict=True))


def check_address(value: Any) -> str:
    """An EIP-55 address (all-lower or all-upper hex is accepted and checksummed)."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"expected a 0x-prefixed 20-byte hex address, got {value!r}")
    body = value[2:]
    if body != body.lower() and body != body.upper() and checksum(value) != value:
        raise ValueError(f"address {value} has a bad EIP-55 checksum (typo?)")
    return checksum(value)


def _tuple(value: Any) -> Any:
    """A TOML array (or a comma-separated string from the environment) as a tuple."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value) if isinstance(value, list) else value


Address = Annotated[str, AfterValidator(check_address)]
StrTuple = Annotated[tuple[str, ...], BeforeValidator(_tuple)]
AddressTuple = Annotated[tuple[Address, ...], BeforeValidator(_tuple)]
IntTuple = Annotated[tuple[int, ...], BeforeValidator(_tuple)]
FloatTuple = Annotated[tuple[float, ...], BeforeValidator(_tuple)]


class Model(BaseModel):
    """Frozen, strict, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PredictiveSettings(Model):
    """The volatility-aware, look-ahead trigger (`mode = "predictive"`); see keeper.strategy.trigger."""

    half_life_s: float = 1800.0
    """EWMA half-life of the volatility estimate: an observed return's weight halves every this many seconds."""
    downside_weight: float = 0.0
    """Asymmetric EWMA: a falling price counts (1 + this) times in the variance."""
    vol_model: Literal["ewma", "garch"] = "ewma"
    """'ewma', or 'garch' (GARCH(1,1) fitted to the observed returns scales the horizon variance)."""
    prior_vol: float = 0.8
    """Annualised volatility assumed for every asset before prices have been observed."""
    reaction_s: float = 60.0
    """Reaction horizon: detection + simulation + inclusion + oracle lag, seconds."""
    max_liquidation_probability: float = 1e-3
    """Act when the probability of liquidation within reaction_s exceeds this."""
    target_horizon_s: float = 3600.0
    """After acting, the probability of liquidation within this many seconds ..."""
    target_probability: float = 0.01
    """... stays below this: the target health rises with volatility (never below target_hf)."""
    max_target_hf: float = 2.5
    gap_bps: int = 0
    """Oracle jump allowance added to the barrier (e.g. a CAPO or exchange-rate gap)."""
    hysteresis: float = 0.03
    """After acting, the trigger re-arms once health is this fraction above trigger_hf (and the
    probability below half the level); until then it acts again only after cooldown_s."""
    cooldown_s: float = 120.0
    emergency_probability: float = 0.05
    """Above this probability the cooldown is ignored."""


class FeedSettings(Model):
    """A Chainlink-style feed's update rules, for the look-ahead ([oracle.feeds.SYMBOL]); the
    market price it is compared with is the off-chain reference ([oracle] reference_url)."""

    deviation_bps: int = 50
    heartbeat_s: int = 3600


ProtectMode = Literal["static", "predictive", "alert"]


class PositionOverrides(Model):
    """[protect.positions."0x..."]: any [protect] or [protect.predictive] key, for one account."""

    trigger_hf: float | None = None
    target_hf: float | None = None
    prefer: StrTuple | None = None
    target_buffer_bps: int | None = None
    mode: ProtectMode | None = None
    half_life_s: float | None = None
    downside_weight: float | None = None
    vol_model: Literal["ewma", "garch"] | None = None
    prior_vol: float | None = None
    reaction_s: float | None = None
    max_liquidation_probability: float | None = None
    target_horizon_s: float | None = None
    target_probability: float | None = None
    max_target_hf: float | None = None
    gap_bps: int | None = None
    hysteresis: float | None = None
    cooldown_s: float | None = None
    emergency_probability: float | None = None


class ProtectSettings(Model):
    accounts: AddressTuple = ()
    """Positions to keep healthy (usually the key's own address)."""
    trigger_hf: float = 1.15
    """Act when the health factor falls below this."""
    target_hf: float = 1.30
    """Bring the health factor back to this."""
    prefer: StrTuple = ("repay", "supply")
    """Order in which to try actions: repay debt from the wallet, supply collateral from the
    wallet, 'deleverage' (repay with the position's own collateral, through `deleverager`). With a
    deleverager set and 'deleverage' not listed, it is tried last: when the wallet cannot reach
    the target."""
    target_buffer_bps: int = 2
    """Aim this many basis points above target, to absorb interest accrued before inclusion."""
    deleverager: Address | Literal[""] = ""
    """keeper's Deleverager (`keeper deploy-deleverager`), owned by the keeper's key; the accounts
    it acts on allowed it once (`keeper protect-setup`)."""
    deleverage_tolerance: float = 0.05
    """A deleverage reverts on chain unless the health factor it leaves is within target_hf plus
    or minus this (interest and prices move between decision and inclusion)."""
    mode: ProtectMode = "static"
    """'static': act below trigger_hf at the oracle price; 'predictive': also act on the
    predicted oracle price and on the probability of liquidation ([protect.predictive]);
    'alert': never act, only alert."""
    predictive: PredictiveSettings = PredictiveSettings()
    positions: dict[str, PositionOverrides] = {}
    """Per-account overrides ([protect.positions."0x..."]; names instead of addresses in a backtest)."""

    def for_account(self, account: str) -> ProtectSettings:
        """These settings with the account's own overrides applied."""
        for who, own in self.positions.items():
            if who.lower() == account.lower():
                given = own.model_dump(exclude_none=True)
                pred = {k: v for k, v in given.items() if k in PredictiveSettings.model_fields}
                top = {k: v for k, v in given.items() if k not in pred}
                return self.model_copy(
                    update={**top, "predictive": self.predictive.model_copy(update=pred), "positions": {}}
                )
        return self


class LiquidateSettings(Model):
    enabled: bool = True
    min_profit_usd: float = 1.0
    """Skip liquidations whose expected profit after gas is below this (oracle base currency)."""
    gas_estimate: int = 450_000
    """Gas assumed when screening a liquidation before it is estimated on chain."""
    comet_absorb_always: bool = False
    """Compound v3: absorb liquidatable accounts even when buying their collateral afterwards
    would not pay for the gas (keeps the market solvent at the keeper's expense)."""
    comet_slippage_bps: int = 50
    """Compound v3: buyCollateral's minAmount is the quote less this (a price update may land first)."""


class FlashSettings(Model):
    """[flash]: liquidations without inventory, through keeper's liquidator contract (a flash loan
    of the debt asset, the collateral sold on Uniswap v3 in the same transaction)."""

    funding: Literal["wallet", "flash", "auto"] = "wallet"
    """wallet: only what the wallet holds (no contract needed); flash: every liquidation through
    the contract; auto: the wallet where it can fund the liquidation, the contract otherwise."""
    liquidator: Address | Literal[""] = ""
    """The FlashLiquidator (`keeper deploy-liquidator`), owned by the keeper's key."""
    router: Address | Literal[""] = ""
    """Uniswap v3 SwapRouter the liquidator sells through (fixed at `keeper deploy-liquidator`)."""
    factory: Address | Literal[""] = ""
    """UniswapV3Factory (pools for sales and loans)."""
    quoter: Address | Literal[""] = ""
    """QuoterV2 (what a sale pays, at the block)."""
    fees: IntTuple = (100, 500, 3_000, 10_000)
    """Uniswap v3 fee tiers searched for pools."""
    source: Literal["auto", "uniswap", "aave", "morpho"] = "auto"
    """Who lends: an Aave market's own Pool (flashLoanSimple) where it can, a Uniswap v3 pool, or
    Morpho Blue (`morpho`) (auto: the cheapest of those able to lend the amount)."""
    morpho: Address | Literal[""] = ""
    """A Morpho Blue contract: its flash loans are free and lend what it holds of each token."""
    sizes: FloatTuple = (1.0, 0.7, 0.5, 0.3, 0.15)
    """Fractions of the largest liquidation quoted each block: the best after price impact wins."""
    quote_points: int = 12
    """Quotes per pair and route each block, at amounts up to what the block's liquidations
    of the pair sell together (the curve later sales in the block are priced on)."""
    slippage_bps: int = 50
    """The sale's minimum out is the quote less this."""
    gas_estimate: int = 1_000_000
    """Gas assumed for a flash liquidation when screening (loan, liquidation, sale, repayment)."""


class OracleSettings(Model):
    max_age_s: int = 90_000
    """A price source whose latest round is older than this (heartbeat + slack, seconds) is stale:
    no action on accounts exposed to that asset. 25 h suits Chainlink's 24 h heartbeat feeds."""
    heartbeats: dict[str, int] = {}
    """Asset symbol or address -> max age (s) for feeds with their own heartbeat (ETH/USD: 1 h)."""
    reference_url: str = ""
    """Optional off-chain reference: a URL answering JSON {"SYMBOL": usd_price, ...}."""
    max_deviation_bps: int = 300
    """An on-chain price further than this from the reference is untrusted (no action on it)."""
    reference_every_s: float = 10.0
    feeds: dict[str, FeedSettings] = {}
    """Asset symbol -> update rules, for the look-ahead ([oracle.feeds.SYMBOL])."""

    def feed_for(self, symbol: str) -> FeedSettings | None:
        return self.feeds.get(symbol)

    def max_age_for(self, symbol: str, address: str = "") -> int:
        for key, age in self.heartbeats.items():
            if key == symbol or (address and key.lower() == address.lower()):
                return age
        return self.max_age_s


class OpsSettings(Model):
    listen: str = "127.0.0.1:9108"
    """host:port of the operations server (/metrics, /healthz, the status page /); '' turns it off."""
    max_block_age_s: float = 120.0
    """/healthz fails when no block was processed for this long (seconds)."""
    max_lag_blocks: int = 5
    """/healthz fails when the keeper is this many blocks behind the node's head."""
    alert_min_tier: Literal["info", "warning", "critical"] = "info"
    """Lowest tier sent to the webhooks: info (actions taken), warning, critical."""
    alert_cooldown_s: float = 600.0
    """The same alert (kind and subject) is not sent again within this many seconds."""
    status_top: int = 50
    """Positions on the status page per market (the protected ones, then the riskiest)."""


class ExecutionSettings(Model):
    max_fee_gwei: float = 200.0
    """Never pay more than this per gas (EIP-1559 maxFeePerGas cap)."""
    priority_fee_gwei: float = 1.0
    gas_limit_multiplier: float = 1.25
    max_gas_spend_native: float = 0.05
    """Upper bound of gas_limit x max_fee for one transaction, in the native coin (ETH)."""
    max_gas_spend_native_per_day: float = 0.5
    """Gas paid in 24 h (mined, plus the worst case of what is in flight), native coin."""
    max_actions_per_hour: int = 120
    max_in_flight: int = 256
    """Transactions the keeper may have signed but not mined at once (a new action waits for room)."""
    account_cooldown_s: float = 0.0
    """No new action on an account within this many seconds of the last one sent for it."""
    kill_switch_file: str = ""
    """While this file exists (or KEEPER_KILL_SWITCH=1), nothing is sent; monitoring goes on."""
    min_native_balance: float = 0.05
    """ALERT when the keeper's gas balance falls below this (native coin)."""
    journal_path: str = ""
    """SQLite journal; empty: .keeper/<network>-<address>.sqlite under the working directory."""
    receipt_timeout_s: float = 120.0
    replace_after_blocks: int = 3
    """A transaction not mined after this many blocks is replaced with bumped fees (or cancelled)."""
    fee_bump_pct: float = 12.5
    """Minimum fee increase of a replacement (geth and most nodes require 10%)."""
    receipt_poll_s: float = 0.5
    private_rpc_url: SecretStr | None = None
    """A private relay (Flashbots-Protect style): single transactions go by
    eth_sendPrivateTransaction, dependent ones (approvals and the action, an absorb and its
    purchases) by eth_sendBundle; nothing reaches the public mempool. Unset: public only."""
    private_blocks: int = 3
    """Blocks a private submission is valid for (maxBlockNumber, the bundle's target blocks)."""
    private_fallback_protect: bool = True
    """A protective action the relay did not include within private_blocks is re-simulated and
    sent publicly (false: it is resubmitted privately, with bumped fees)."""
    private_fallback_liquidate: bool = True
    """The same for liquidations (false: a liquidation never reaches the public mempool)."""
    private_also_public: bool = False
    """Send every private transaction to the public RPC as well (faster inclusion, no privacy)."""


class CoreSettings(Model):
    """The top-level keys of a network file."""

    network: str = ""
    chain_id: int
    """The chain the RPC must be on."""
    native_asset: Address | Literal[""] = ""
    """Asset (listed on every watched lending market) whose price converts gas, paid in the
    native coin, to the market's price units: WETH on Ethereum."""
    multicall3: Address = MULTICALL3
    """Multicall3 (the same address on most chains; set it for a local chain)."""
    poll_interval_s: float = 2.0
    log_chunk_blocks: int = 5_000
    multicall_chunk: int = 400
    rpc_timeout_s: float = 20.0
    """Per request; with several endpoints a slower one is left for the next."""
    rpc_max_lag_blocks: int = 5
    """With several endpoints: one this many blocks behind the best is out of rotation."""
    rpc_retry_budget_s: float = 8.0
    """How long one read is retried (with backoff, on every endpoint) before it counts as failed;
    keep it under the chain's block time."""
    max_stall_s: float = 300.0
    """Exit (code 3, one line saying why) when no block has been processed for this long; /healthz
    answers 503 well before (`[ops] max_block_age_s`)."""
    checkpoint_every_blocks: int = 100
    """Save where discovery would resume (block, known accounts) this often."""
    reconcile_every_blocks: int = 300
    """Re-read every account of every market this often (0: never) and count drift: catches what
    no event announced (e.g. a Comet borrow by base transfer, which names only the receiver)."""


class Settings(CoreSettings):
    """Everything, validated. `markets` holds each protocol's tables by their TOML name."""

    rpc_url: SecretStr
    protect: ProtectSettings = ProtectSettings()
    liquidate: LiquidateSettings = LiquidateSettings()
    flash: FlashSettings = FlashSettings()
    execution: ExecutionSettings = ExecutionSettings()
    oracle: OracleSettings = OracleSettings()
    ops: OpsSettings = OpsSettings()
    markets: dict[str, tuple[Any, ...]] = {}
    """TOML table name ('aave', 'comet', 'perps') -> that protocol's validated market settings."""
    ws_url: SecretStr | None = None
    """KEEPER_WS_URL (or a ws(s):// KEEPER_RPC_URL): newHeads subscription that wakes the loop."""
    alert_webhooks: SecretStr | None = None
    """KEEPER_ALERT_WEBHOOKS: comma-separated `format=url` (json, slack, discord, telegram)."""
    private_key: SecretStr | None = None
    relay_auth_key: SecretStr | None = None
    """KEEPER_RELAY_AUTH_KEY: the identity the private relay knows the keeper by (a key of its own)."""
    address: str | None = None
    """The keeper's address: from the key, or KEEPER_ADDRESS for a key-less dry run."""
    source: str = ""
    """The file the settings came from (named in errors)."""

    def market_tables(self, table: str) -> tuple[Any, ...]:
        return self.markets.get(table, ())

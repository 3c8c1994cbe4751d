"""One market's decisions for one block, as a pure function: protect the watched positions, then
liquidate others; spend from the wallet as it plans. It asks the market's adapter (the protocol's
levers) for exact amounts and returns the actions with every decision and alert as values; the
app logs them. Same inputs, same plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from keeper.risk.exposures import Risk
from keeper.settings import Settings
from keeper.strategy.actions import Action, fields_of
from keeper.strategy.flash import FlashContext
from keeper.strategy.trigger import Arm, evaluate, sizing_settings

if TYPE_CHECKING:
    from keeper.book import Snapshot
    from keeper.protocols.base import DeleverageRules, FlashRules, MarketAdapter


@dataclass(frozen=True)
class Decision:
    """A line for the `keeper.decision` log: what was decided about an account, and its inputs."""

    kind: str
    account: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Alert:
    message: str
    kind: str
    subject: str
    tier: str = "critical"


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    arms: dict[str, Arm] = field(default_factory=dict)
    """Trigger state per protected account after this block."""
    wallet: dict[str, int] = field(default_factory=dict)
    """What is left of the wallet after the planned actions."""
    static_fallback: bool = False
    """A non-static [protect] mode was asked for where the market offers only the static trigger."""


@dataclass(frozen=True)
class Inputs:
    block: int
    now: int
    """The block's timestamp (seconds)."""
    gas_price_wei: int
    wallet: Mapping[str, int]
    """Token -> keeper balance ('' = the native coin), shared by every market: spent as planned."""
    positions: Mapping[str, Any]
    untrusted: Mapping[int, str]
    """Column -> why its price must not be acted on."""
    risks: Mapping[str, Risk] = field(default_factory=dict)
    """Protected account -> risk inputs of the predictive trigger (absent: static trigger)."""
    arms: Mapping[str, Arm] = field(default_factory=dict)
    flash: FlashContext | None = None
    """Quotes and lenders for liquidations through the flash liquidator (None: wallet only)."""


def plan(market: MarketAdapter, snap: Snapshot, inputs: Inputs, settings: Settings) -> Plan:
    out = Plan(arms=dict(inputs.arms), wallet=dict(inputs.wallet))
    protected = set(market.protected_accounts())
    for account in market.protected_accounts():
        pos = inputs.positions.get(account)
        if pos is not None:
            _protect(market, pos, account, inputs, settings, out)
    candidates = market.liquidation_candidates(snap, inputs.positions, protected)
    trusted = []
    for pos in candidates:
        if reasons := _exposure(market, pos, inputs.untrusted, ()):
            out.decisions.append(Decision("skip-liquidation", pos.user, {"reason": "oracle guard", "oracle": reasons}))
        else:
            trusted.append(pos)
    if trusted or market.capabilities.plans_without_candidates:
        _liquidate(market, trusted, inputs, settings, out)
    return out


def _liquidate(market: MarketAdapter, trusted: list[Any], inputs: Inputs, settings: Settings, out: Plan) -> None:
    """From the wallet, through the flash liquidator, or both ([flash] funding = auto: the wallet
    where it can fund the liquidation, the flash loan for the rest)."""
    funding = settings.flash.funding if inputs.flash is not None else "wallet"
    skipped: dict[str, Decision] = {}
    done: set[str] = set()
    if funding != "flash":
        gas_cost = market.gas_cost(settings.liquidate.gas_estimate * inputs.gas_price_wei)
        liquidations = market.liquidations(trusted, out.wallet, gas_cost, settings.liquidate)
        for skip in liquidations.skipped:
            skipped[skip.account] = Decision("skip-liquidation", skip.account, {"reason": skip.reason, **skip.inputs})
        for action in liquidations.actions:
            _spend(out.wallet, action)
            done.add(action.subject)
        out.actions += liquidations.actions
    if inputs.flash is not None and funding != "wallet":
        flash_market = cast("FlashRules", market)
        gas_cost = market.gas_cost(settings.flash.gas_estimate * inputs.gas_price_wei)
        flashed = flash_market.flash_liquidations(trusted, inputs.flash, gas_cost, settings, done)
        for action in flashed.actions:
            skipped.pop(action.subject, None)  # the wallet could not, the flash loan does
        for skip in flashed.skipped:
            wallet_why = skipped.get(skip.account)
            reason = skip.reason if wallet_why is None else f"{wallet_why.inputs['reason']}; {skip.reason}"
            skipped[skip.account] = Decision("skip-liquidation", skip.account, {**skip.inputs, "reason": reason})
        out.actions += flashed.actions
    out.decisions += skipped.values()


def _protect(market: MarketAdapter, pos: Any, account: str, inputs: Inputs, settings: Settings, out: Plan) -> None:
    if why := market.unsupported(pos):
        out.decisions.append(Decision("skip", account, {"reason": why}))
        return
    ps = market.protect_settings(settings.protect.for_account(account))
    trig = None
    if ps.mode != "static":
        risk = inputs.risks.get(account)
        if risk is None:
            out.static_fallback = True
        else:
            trig = evaluate(risk, ps, out.arms.get(account, Arm()), float(inputs.now))
            out.arms[account] = trig.arm
            if trig.reason != "healthy":
                out.decisions.append(Decision("trigger", account, asdict(trig)))
            if trig.reason.startswith("alert-only"):
                out.alerts.append(Alert(f"ALERT: {account} at risk: {trig.reason}", "at risk", account, "warning"))
            if not trig.act:
                return
            ps = sizing_settings(ps, trig)
    actions = _with_deleverage(market, pos, market.protect(pos, out.wallet, ps), inputs.flash, ps)
    if not actions:
        _unfunded(market, pos, account, ps, out)
        return
    first = actions[0]
    if ps.mode == "alert":  # never act: the static trigger (markets without the predictive one) only alerts
        out.alerts.append(
            Alert(f"ALERT: {account} at risk: health {first.health_before:.4f} below trigger {ps.trigger_hf:.3f} "
                  f"(mode alert: nothing sent)", "at risk", account, "warning")
        )  # fmt: skip
        out.decisions.append(Decision("skip-protect", account, {"reason": "mode alert", "action": fields_of(first)}))
        return
    reasons = _exposure(market, pos, inputs.untrusted, first.spends)
    if trig is not None and trig.health < first.health_before and all("deviates" in r for r in reasons):
        reasons = []  # the oracle's answer is above the market's: protecting on the worse price is the safe side
    if reasons:
        out.alerts.append(
            Alert(
                f"ALERT: not protecting {account} (health {first.health_before:.4f}): untrusted oracle price: "
                + "; ".join(reasons),
                "cannot protect",
                account,
            )
        )
        detail = {"reason": "oracle guard", "oracle": reasons, "action": fields_of(first)}
        out.decisions.append(Decision("skip-protect", account, detail))
        return
    if not first.reaches_target:
        out.alerts.append(
            Alert(
                f"ALERT: the wallet cannot bring {account} to target {ps.target_hf:.3f}: best is "
                f"{first.health_after:.4f} with {type(first).__name__} ("
                + ("what can be borrowed and sold" if first.spends == () else "insufficient funds")
                + ")",
                "cannot protect",
                account,
            )
        )
    for action in actions:
        _spend(out.wallet, action)
    out.actions += actions


def _with_deleverage(
    market: MarketAdapter, pos: Any, wallet: list[Action], ctx: FlashContext | None, ps: Any
) -> list[Action]:
    """The wallet's action or the deleverage, whichever comes first in `prefer` among those
    reaching the target ('deleverage' unlisted: last), else the one that gets closest."""
    if ctx is None or not ps.deleverager or not market.capabilities.deleverage:
        return wallet
    delev = cast("DeleverageRules", market).deleverage(pos, ctx, ps)
    if delev is None:
        return wallet
    order = [*ps.prefer, *(() if "deleverage" in ps.prefer else ("deleverage",))]

    def rank(a: Action) -> int:
        kind = getattr(a, "kind", "")
        return order.index(kind) if kind in order else len(order)

    options = [*wallet[:1], delev]
    reaching = [a for a in options if a.reaches_target]
    best = min(reaching, key=rank) if reaching else max(options, key=lambda a: a.health_after)
    return [delev] if best is delev else wallet


class _Plenty(Mapping[str, int]):
    """A wallet holding plenty of every token: what the levers would do if funds were no limit."""

    def __getitem__(self, token: str) -> int:
        return 10**40

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, token: str, default: Any = None) -> int:
        return 10**40


def _unfunded(market: MarketAdapter, pos: Any, account: str, ps: Any, out: Plan) -> None:
    """A protected position that needs protection the wallet cannot fund: the levers, given
    plenty, would act. ALERT 'cannot protect', naming what it would take."""
    wanted = market.protect(pos, _Plenty(), ps)
    if not wanted:
        return  # healthy, or nothing any wallet could do (the market refuses every lever)
    first = wanted[0]
    need = ", ".join(f"{amount} of {token}" for token, amount in first.spends) or type(first).__name__
    out.alerts.append(
        Alert(
            f"ALERT: cannot protect {account}: health {first.health_before:.4f} is below the trigger "
            f"{ps.trigger_hf:.3f} and the wallet holds nothing a lever can use (it would take {need}: "
            f"{type(first).__name__} to {first.health_after:.4f})",
            "cannot protect",
            account,
        )
    )
    out.decisions.append(Decision("skip-protect", account, {"reason": "cannot protect: wallet lacks funds",
                                                            "would_take": fields_of(first)}))  # fmt: skip


def _exposure(
    market: MarketAdapter, pos: Any, untrusted: Mapping[int, str], spends: tuple[tuple[str, int], ...]
) -> list[str]:
    """Why the position's prices are untrusted: the problems of the columns it is exposed to
    (and of the tokens the action spends)."""
    columns = set(market.exposed_columns(pos))
    for token, _ in spends:
        column = market.column_of(token)
        if column is not None:
            columns.add(column)
    return sorted(f"{market.symbols[i]}: {untrusted[i]}" for i in columns if i in untrusted)


def _spend(wallet: dict[str, int], action: Action) -> None:
    for token, amount in action.spends:
        wallet[token] = wallet.get(token, 0) - amount

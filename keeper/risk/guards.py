"""Oracle guards: which prices must not be acted on (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FeedRound:
    """Chainlink `latestRoundData` of an asset's price source."""

    round_id: int
    answer: int
    started_at: int
    updated_at: int
    answered_in_round: int


def oracle_problems(feeds: Sequence[FeedRound | None], now: int, max_age_s: int | Sequence[int]) -> dict[int, str]:
    """Asset index -> why its price must not be acted on: non-positive answer, incomplete round
    (updatedAt 0 or answeredInRound < roundId), or older than its max age (heartbeat + slack; one
    for all, or one per asset) at block time `now`. Assets whose source has no `latestRoundData`
    (None) are not judged here."""
    problems: dict[int, str] = {}
    ages = [max_age_s] * len(feeds) if isinstance(max_age_s, int) else list(max_age_s)
    for i, f in enumerate(feeds):
        max_age = ages[i]
        if f is None:
            continue
        if f.answer <= 0:
            problems[i] = f"non-positive answer {f.answer} (round {f.round_id})"
        elif f.updated_at == 0 or f.answered_in_round < f.round_id:
            problems[i] = (
                f"incomplete round {f.round_id} (updatedAt {f.updated_at}, answeredInRound {f.answered_in_round})"
            )
        elif now - f.updated_at > max_age:
            problems[i] = f"stale: updated {now - f.updated_at} s ago, more than its max age {max_age} s"
    return problems


def deviation_problems(
    symbols: Sequence[str], prices_usd: Sequence[float], reference: Mapping[str, float], max_bps: int
) -> dict[int, str]:
    """Asset index -> why its on-chain price is untrusted: more than `max_bps` away from the
    off-chain reference for the same symbol (assets the reference does not quote are not judged)."""
    problems: dict[int, str] = {}
    for i, (symbol, price) in enumerate(zip(symbols, prices_usd, strict=True)):
        ref = reference.get(symbol)
        if ref is None or ref <= 0 or price <= 0:
            continue
        bps = abs(price / ref - 1) * 10_000
        if bps > max_bps:
            problems[i] = f"deviates {bps:.0f} bps from the off-chain reference ({price:,.4f} vs {ref:,.4f})"
    return problems

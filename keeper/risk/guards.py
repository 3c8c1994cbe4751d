"""Oracle guards: which prices must not be acted on (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedRound:
    """Chainlink `latestRoundData` of an asset's price source."""

    round_id: int
    answer: int
    started_at: int
    updated_at: int
    answered_in_round: int


def oracle_problems(feeds: tuple[FeedRound | None, ...], now: int, max_age_s: int) -> dict[int, str]:
    """Asset index -> why its price must not be acted on: non-positive answer, incomplete round
    (updatedAt 0 or answeredInRound < roundId), or older than `max_age_s` (heartbeat + slack) at
    block time `now`. Assets whose source has no `latestRoundData` (None) are not judged here."""
    problems: dict[int, str] = {}
    for i, f in enumerate(feeds):
        if f is None:
            continue
        if f.answer <= 0:
            problems[i] = f"non-positive answer {f.answer} (round {f.round_id})"
        elif f.updated_at == 0 or f.answered_in_round < f.round_id:
            problems[i] = (
                f"incomplete round {f.round_id} (updatedAt {f.updated_at}, answeredInRound {f.answered_in_round})"
            )
        elif now - f.updated_at > max_age_s:
            problems[i] = f"stale: updated {now - f.updated_at} s ago, more than max_age_s {max_age_s}"
    return problems

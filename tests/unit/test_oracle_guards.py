from keeper.risk.guards import FeedRound, oracle_problems

NOW = 1_000_000


def test_each_guard():
    feeds = (
        FeedRound(5, 300_000_000_000, NOW - 60, NOW - 60, 5),  # fine
        FeedRound(5, 0, NOW - 60, NOW - 60, 5),  # zero answer
        FeedRound(5, -1, NOW - 60, NOW - 60, 5),  # negative
        FeedRound(5, 100, NOW - 60, 0, 5),  # updatedAt 0: round not complete
        FeedRound(6, 100, NOW - 60, NOW - 60, 5),  # answered in an earlier round
        FeedRound(5, 100, NOW - 3_601, NOW - 3_601, 5),  # older than max age
        None,  # source without latestRoundData: not judged
    )
    problems = oracle_problems(feeds, NOW, 3_600)
    assert set(problems) == {1, 2, 3, 4, 5}
    assert "non-positive" in problems[1] and "non-positive" in problems[2]
    assert "incomplete" in problems[3] and "incomplete" in problems[4]
    assert "stale: updated 3601 s ago" in problems[5]
    assert oracle_problems(feeds[:1], NOW, 3_600) == {}

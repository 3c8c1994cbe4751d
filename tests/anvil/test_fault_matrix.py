"""The fault matrix: a crash with Aave and Comet accounts to liquidate and positions to protect on
both, the keeper reaching anvil through fault proxies (every kind of fault, mixed) at 20% and 40%
of requests from start-up on: 20% over two endpoints, 40% over one (the other two corners and
10% are in benchmarks.faults: they add nothing these do not cover, and the suite's time is
bounded). Every position is handled
within BOUND blocks of the crash (1 s blocks; measured 2 to 17, typically under 10), with no
transaction reverted, no position acted on twice, and nothing left in flight in the journal once
sending stops. About 20 s per case."""

import pytest

from benchmarks.faults import Case, run_case

BOUND = 30
"""Blocks after the crash within which everything must be handled (0% faults: 1-3 blocks)."""


@pytest.mark.parametrize(("rate", "endpoints"), [(0.2, 2), (0.4, 1)])
async def test_every_position_handled_through_faults(anvil, tmp_path, rate, endpoints):
    result = await run_case(Case(rate, endpoints, aave=8, comet=3, protected=2, seed=11, max_blocks=BOUND), tmp_path)
    print(f"{rate:.0%} x {endpoints}: {result.blocks} blocks, {result.seconds:.1f} s, {result.faults} faults")
    assert result.handled, result.missing
    assert result.blocks <= BOUND
    assert result.faults > 0
    assert result.reverts == 0
    assert result.duplicates == 0
    assert result.left_in_flight == 0

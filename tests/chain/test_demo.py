"""`keeper demo` end to end on its own embedded chain."""

from keeper.devtools.demo import run_demo


async def test_demo_protects_and_liquidates():
    lines: list[str] = []
    result = await run_demo(out=lines.append)
    text = "\n".join(lines)
    assert result.protections >= 1 and result.liquidations >= 1 and result.failures == 0, text
    assert all(hf >= 1.0 for hf in result.final_health.values()), result.final_health
    assert result.final_health["you"] >= result.target_hf
    assert result.final_comet_health["you"] >= result.target_hf
    assert all(hf >= 1.0 for hf in result.final_comet_health.values()), result.final_comet_health
    assert result.final_perps_ratio >= result.perps_target
    assert "perps PROTECT #1" in text and "perps LIQUIDATE #2" in text, text
    for word in ("PROTECT", "LIQUIDATE", "ABSORB", "BUY", "=== Summary ==="):
        assert word in text, word

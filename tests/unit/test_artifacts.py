"""The committed contract artifacts and abis/ are what contracts/ compiles to with the pinned solc."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_artifacts_are_up_to_date(tmp_path):
    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must have node and the pinned solc (npm ci) to check the artifacts")
        pytest.skip("node or node_modules/solc missing: run scripts/setup.sh")
    subprocess.run(
        ["node", str(ROOT / "scripts" / "build-contracts.mjs"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = json.loads((tmp_path / "keeper" / "devtools" / "artifacts.json").read_text())
    committed = json.loads((ROOT / "keeper" / "devtools" / "artifacts.json").read_text())
    assert fresh == committed, "keeper/devtools/artifacts.json is stale: run `npm run build-contracts`"
    for f in (tmp_path / "abis").glob("*.json"):
        assert json.loads(f.read_text()) == json.loads((ROOT / "abis" / f.name).read_text()), f"abis/{f.name} is stale"


def test_abis_have_the_real_signatures():
    """Spot-check against the deployed Aave v3 / Chainlink / Multicall3 selectors."""
    from keeper.sources.abi import event, fn

    assert fn("AaveV3Pool", "liquidationCall").selector.hex() == "00a718a9"
    assert fn("AaveV3Pool", "getUserAccountData").selector.hex() == "bf92857c"
    assert fn("AaveV3Pool", "supply").selector.hex() == "617ba037"
    assert fn("AaveV3Pool", "repay").selector.hex() == "573ade81"
    assert fn("AaveV3Pool", "getReserveData").selector.hex() == "35ea6a75"
    assert fn("AggregatorV3", "latestRoundData").selector.hex() == "feaf968c"
    assert fn("Multicall3", "aggregate3").selector.hex() == "82ad56cb"
    assert event("AaveV3Pool", "LiquidationCall").topic.hex() == (
        "e413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
    )

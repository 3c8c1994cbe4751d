"""The benchmarks still run (on tiny inputs): a refactor that breaks one fails here, not in a
user's hands. The figures themselves are measured with the full commands (README Performance)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["benchmarks.engine", "--accounts", "20000", "--repeat", "1"],
        ["benchmarks.rpc_per_block", "--accounts", "200"],
        ["benchmarks.reaction", "--accounts", "300", "--liquidatable", "5", "--runs", "1"],
        [
            "benchmarks.faults",
            "--aave",
            "3",
            "--comet",
            "1",
            "--protected",
            "1",
            "--rates",
            "0.2",
            "--endpoints",
            "1",
        ],
    ],
    ids=["engine", "rpc_per_block", "reaction", "faults"],
)
def test_benchmark_runs_and_prints_its_table(args, anvil):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(word in r.stdout for word in ("keeper", "numpy", "handled")), r.stdout

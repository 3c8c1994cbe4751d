"""Pure layers stay pure: risk/ and strategy/ import no I/O, clocks or randomness."""

import ast
from pathlib import Path

FORBIDDEN = {"web3", "aiohttp", "asyncio", "time", "os", "random", "requests", "socket", "eth_account", "sqlite3"}
ROOT = Path(__file__).resolve().parents[2] / "keeper"


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_risk_and_strategy_are_pure():
    files = list((ROOT / "risk").glob("*.py")) + list((ROOT / "strategy").glob("*.py"))
    assert files
    for f in files:
        bad = imports(f) & FORBIDDEN
        assert not bad, f"{f.name} imports {bad}"


def test_only_the_executor_signs():
    for f in ROOT.rglob("*.py"):
        if "sign_transaction" in f.read_text():
            assert f.name == "executor.py", f

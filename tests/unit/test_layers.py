"""The design's rules, checked on the code itself: pure layers import nothing that does I/O (in a
fresh interpreter, so transitive imports count), protocol action types are inspected only inside
their protocol's package, no module outgrows 400 lines, and keys are handled in one module."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "keeper"
IO_MODULES = ("web3", "aiohttp", "eth_account", "sqlite3", "_sqlite3", "dotenv", "pydantic_settings")
NETWORK_CLIENTS = ("http.client", "urllib3", "requests", "websockets", "ssl", "asyncio")
"""Socket-level clients. (The stdlib `socket` module itself is imported by `uuid` and `email`,
which pydantic loads; it opens nothing.)"""
MAX_LINES = 400

PROBE = """
import importlib, json, pkgutil, sys
import keeper.risk, keeper.strategy
for pkg in (keeper.risk, keeper.strategy):
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(pkg.__name__ + "." + m.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_pure_layers() -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout))


def offending(modules: set[str]) -> list[str]:
    banned = IO_MODULES + NETWORK_CLIENTS
    return sorted(m for m in modules if m in banned or m.split(".")[0] in IO_MODULES)


def test_risk_and_strategy_load_no_io_modules_transitively():
    modules = loaded_by_pure_layers()
    assert "keeper.strategy.planner" in modules and "keeper.risk.exposures" in modules
    assert not offending(modules)


def test_the_purity_check_catches_a_transitive_import():
    """The same check on a module set that pulls in web3 the way a careless import would."""
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys, keeper.sources.chain; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "web3" in offending(set(json.loads(out.stdout)))


def action_classes() -> dict[str, Path]:
    """Concrete action type name -> the package that defines it."""
    found = {}
    for f in [*ROOT.glob("protocols/*/actions.py"), ROOT / "strategy" / "actions.py"]:
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name != "Action":
                found[node.name] = f.parent
    return found


def isinstance_violations() -> list[str]:
    """isinstance on a concrete action type outside a protocol package (the shared lending
    `Protect` may be inspected by the lending protocols' writers)."""
    actions = action_classes()
    bad = []
    for f in ROOT.rglob("*.py"):
        in_protocol = f.is_relative_to(ROOT / "protocols") and f.parent != ROOT / "protocols"
        for node in ast.walk(ast.parse(f.read_text())):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2
            ):
                continue
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            for name in names & set(actions):
                home = actions[name]
                if not in_protocol or (home != ROOT / "strategy" and f.parent != home):
                    bad.append(f"{f.relative_to(ROOT)}:{node.lineno} isinstance(..., {name})")
    return bad


def test_no_isinstance_on_concrete_actions_outside_their_protocol():
    assert action_classes().keys() >= {"Protect", "Liquidate", "Absorb", "BuyCollateral", "AddMargin"}
    assert not isinstance_violations()


def test_the_isinstance_check_catches_a_switch_in_the_app(tmp_path, monkeypatch):
    fake = ROOT / "app" / "_layer_probe.py"
    fake.write_text("def f(a):\n    return isinstance(a, Absorb)\n")
    try:
        assert any("_layer_probe.py" in v for v in isinstance_violations())
    finally:
        fake.unlink()


def long_modules() -> list[str]:
    return sorted(
        f"{f.relative_to(ROOT)} ({n} lines)"
        for f in ROOT.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    )


def test_no_module_over_400_lines():
    assert not long_modules()


def test_only_the_signer_handles_keys():
    markers = ("PrivateKey(", "Account.from_key", "Account.decrypt", "private_key.get_secret_value")
    for f in ROOT.rglob("*.py"):
        text = f.read_text()
        for m in markers:
            assert m not in text or f == ROOT / "execution" / "signer.py", f"{f.relative_to(ROOT)} uses {m}"


def test_execution_reaches_the_chain_only_through_the_chain_port():
    for f in (ROOT / "execution").glob("*.py"):
        assert ".w3." not in f.read_text(), f.name

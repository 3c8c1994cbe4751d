"""What `pip install .` gives: a wheel with the console script and the run-time data, and a
command whose help describes every sub-command and option."""

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

from keeper.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "backtest",
    "stress",
    "run",
    "status",
    "rehearse",
    "deploy-testnet",
    "deploy-liquidator",
    "demo",
    "deploy-deleverager",
    "protect-setup",
}


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == COMMANDS
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, p in sub.choices.items():
        assert helps.get(name), f"`keeper {name}` has no summary"
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"`keeper {name} {'/'.join(action.option_strings)}` has no help"


def test_python_dash_m_keeper_helps() -> None:
    out = subprocess.run([sys.executable, "-m", "keeper", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS), out.stdout
    for c in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "keeper", c, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and f"usage: keeper {c}" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "keeper", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("keeper "), r.stdout


def test_wheel_has_the_console_script_and_data(tmp_path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("keeper-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "keeper/devtools/artifacts.json",
        "keeper/app/status.html",
        "keeper/abis/AaveV3Pool.json",
        "keeper/app/ops.py",
        "keeper/protocols/aave_v3/adapter.py",
    ):
        assert needed in names, needed
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "keeper = keeper.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

"""A self-starting anvil (from node_modules) for tests that need a real JSON-RPC node over HTTP."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
# anvil's well-known dev accounts (public test keys of its default mnemonic)
DEV_KEYS = {
    0: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    9: "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anvil():
    """A fresh anvil (automine); yields its URL. `interval_mining(url)` switches to 1 s blocks."""
    if not ANVIL.exists() and shutil.which("anvil") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have anvil (npm install)")
        pytest.skip("anvil missing: run scripts/setup.sh")
    port = free_port()
    exe = str(ANVIL) if ANVIL.exists() else "anvil"
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("anvil did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)

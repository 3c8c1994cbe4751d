"""A self-starting anvil (from node_modules) for tests that need a real JSON-RPC node over HTTP."""

import os
import shutil
from pathlib import Path

import pytest

from keeper.devchain import free_port, start_anvil

ROOT = Path(__file__).resolve().parents[2]
# anvil's well-known dev accounts (public test keys of its default mnemonic)
DEV_KEYS = {
    0: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    9: "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
}
__all__ = ["DEV_KEYS", "ROOT", "free_port"]


@pytest.fixture
def anvil():
    """A fresh anvil (automine); yields its URL."""
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists() and shutil.which("anvil") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have anvil (npm install)")
        pytest.skip("anvil missing: run scripts/setup.sh")
    proc, url = start_anvil(free_port())
    yield url
    proc.terminate()
    proc.wait(timeout=10)

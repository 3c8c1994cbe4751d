"""anvil from node_modules (or PATH) for local chains, forks and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def start_anvil(port: int, *extra: str, timeout_s: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil from node_modules (or PATH) on 127.0.0.1:`port`; return (process, URL)."""
    root = Path(__file__).resolve().parents[2]
    local = root / "node_modules" / ".bin" / "anvil"
    exe = str(local) if local.exists() else shutil.which("anvil")
    if exe is None:
        raise FileNotFoundError("anvil not found: run scripts/setup.sh (npm install)")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--silent", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"anvil did not start on port {port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

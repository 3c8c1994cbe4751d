"""Regenerates the crash paths in this folder (seeded, so the files are reproducible):

    python tests/data/make_paths.py

Each path is one-minute ETH/USD market prices and the gas price: calm hours first (the volatility
estimate's warm-up), then the crash, then its aftermath.

- crash_30pct_12h.csv: a Black-Thursday-like -30 % over 12 h, in legs, with one sharp leg
  (-17 % in 25 min) while gas is above the feed transmitters' cap (the oracle lags it).
- crash_20pct_30min.csv: a 10-Oct-2025-like -20 % in 30 min; the feed stalls for 14 minutes
  in the middle of the fall (gas x10), then catches up in one jump.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000
CALM_VOL = 0.55 / math.sqrt(365 * 1440)  # per minute
LEGS_30 = 0.95 * 0.98 * 0.83 * 1.02 * 0.96  # the legs before the last one
LEGS_20 = 0.96 * 0.85


def write(name: str, log_moves: np.ndarray, gas: np.ndarray, start: float = 2000.0) -> None:
    price = start * np.exp(np.concatenate([[0.0], np.cumsum(log_moves)]))
    with (HERE / name).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "WETH", "gas_gwei"])
        for k, (p, g) in enumerate(zip(price, gas, strict=True)):
            w.writerow([T0 + 60 * k, f"{p:.2f}", f"{g:.1f}"])


def legs(rng: np.random.Generator, spec: list[tuple[int, float, float]]) -> np.ndarray:
    """(minutes, total log move, noise multiple of the calm volatility) per leg."""
    out = [rng.normal(total / n, CALM_VOL * noise, n) for n, total, noise in spec]
    return np.concatenate(out)


def main() -> None:
    rng = np.random.default_rng(20200312)
    spec = [(12 * 60, 0.0, 1.0), (180, math.log(0.95), 2.0), (60, math.log(0.98), 2.0), (25, math.log(0.83), 3.0),
            (120, math.log(1.02), 3.0), (240, math.log(0.96), 2.5), (94, math.log(0.70 / LEGS_30), 2.5),
            (6 * 60, 0.0, 1.5)]  # fmt: skip
    moves = legs(rng, spec)
    gas = np.full(len(moves) + 1, 25.0)
    gas[12 * 60 + 180 + 60 - 2 : 12 * 60 + 180 + 60 + 26] = 450.0  # the sharp leg: the feed cannot transmit
    gas[12 * 60 : 12 * 60 + 720] = np.maximum(gas[12 * 60 : 12 * 60 + 720], 80.0)
    write("crash_30pct_12h.csv", moves, gas)

    rng = np.random.default_rng(20251010)
    spec = [(6 * 60, 0.0, 1.0), (8, math.log(0.96), 3.0), (14, math.log(0.85), 4.0), (8, math.log(0.8 / LEGS_20), 3.0),
            (120, math.log(1.02), 2.0)]  # fmt: skip
    moves = legs(rng, spec)
    gas = np.full(len(moves) + 1, 20.0)
    gas[6 * 60 : 6 * 60 + 30] = 120.0
    gas[6 * 60 + 8 : 6 * 60 + 22] = 900.0  # transmitters priced out: the answer stalls for 14 minutes
    write("crash_20pct_30min.csv", moves, gas)


if __name__ == "__main__":
    main()

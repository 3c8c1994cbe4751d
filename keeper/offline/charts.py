"""matplotlib, headless, or a clear error when the optional dependency is missing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keeper.errors import ConfigError

if TYPE_CHECKING:
    from keeper.offline.backtest import PositionOutcome
    from keeper.offline.scenario import Path_, Scenario


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("PNG output needs matplotlib: pip install 'keeper[charts]' (or pass --no-png)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart(results: dict[str, dict[str, PositionOutcome]], path: Path_, sc: Scenario, out: str | Path) -> None:
    """PNG: the market price, then each position's health over time per strategy, actions (^) and
    liquidations (x) marked."""
    plt = pyplot()
    names = [p.name for p in sc.positions]
    fig, axes = plt.subplots(len(names) + 1, 1, figsize=(11, 2.6 * (len(names) + 1)), sharex=True)
    t0 = path.times[0]
    hours = (path.times - t0) / 3600
    ax = axes[0]
    for sym, px in path.prices.items():
        ax.plot(hours, px, label=f"{sym} market")
    ax.set_ylabel("USD")
    ax.legend(loc="upper right")
    shown = hours[hours * 3600 >= sc.knobs.warmup_s]
    colors = {"predictive": "tab:green", "static": "tab:orange", "alert": "tab:gray", "deleverage": "tab:blue"}
    for ax, name in zip(axes[1:], names, strict=True):
        for st, per in results.items():
            o = per[name]
            ax.plot(shown[: len(o.health)], o.health, color=colors.get(st), label=st, lw=1.2)
            for when, kind in o.marks:
                if kind == "alert":
                    continue
                k = min(int(np.searchsorted(path.times, when)), len(path.times) - 1)
                y = o.health[max(0, min(len(o.health) - 1, k - (len(hours) - len(shown))))]
                ax.plot((when - t0) / 3600, y, "^" if kind == "action" else "x", color=colors.get(st), ms=7)
        ax.axhline(1.0, color="red", lw=0.8, ls="--")
        ax.set_ylabel(f"{name}\nhealth")
        ax.set_ylim(0.8, 2.0)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)

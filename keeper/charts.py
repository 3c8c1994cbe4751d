"""matplotlib, headless, or a clear error when the optional dependency is missing."""

from __future__ import annotations

from typing import Any

from keeper.errors import ConfigError


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("PNG output needs matplotlib: pip install 'keeper[charts]' (or pass --no-png)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

"""[comet] (one market) or [[comet]] (several): Compound v3 markets."""

from __future__ import annotations

from keeper.settings import Address, Model


class CometSettings(Model):
    comet: Address
    """Compound v3 Comet proxy address (one market: one base asset)."""
    start_block: int = 0
    """First block scanned for the market's events when discovering accounts."""

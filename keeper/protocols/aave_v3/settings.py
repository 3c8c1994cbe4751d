"""[aave]: one Aave v3 market."""

from __future__ import annotations

from keeper.settings import Address, Model


class AaveSettings(Model):
    pool: Address
    """Aave v3 Pool (proxy) address."""
    oracle: Address
    """AaveOracle address (prices in the base currency, 8 decimals on USD markets)."""
    start_block: int = 0
    """First block scanned for the Pool's events when discovering accounts."""

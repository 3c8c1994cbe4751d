"""Protocol name -> its settings model and adapter factory: the one list of supported protocols.

Adding a protocol is a package under keeper/protocols/ and one line here. The settings models are
imported eagerly (pure); an adapter only when a market of that protocol is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keeper.protocols.aave_v3.settings import AaveSettings
from keeper.protocols.comet.settings import CometSettings
from keeper.protocols.synthetix_perps.settings import PerpsSettings
from keeper.settings import Model

if TYPE_CHECKING:
    from keeper.protocols.base import MarketAdapter
    from keeper.settings import Settings


@dataclass(frozen=True)
class Entry:
    table: str
    """The TOML table: [name] for one market, [[name]] for several where `many`."""
    settings: type[Model]
    adapter: str
    """module:class of the MarketAdapter, built as cls(market_settings, settings, keeper_address)."""
    many: bool = False
    """[[table]] lists several markets."""
    needs_native_asset: bool = True
    """Gas is valued through `native_asset`, which must be listed on the market."""

    def build(self, market: Model, settings: Settings, keeper_address: str) -> MarketAdapter:
        module, name = self.adapter.split(":")
        cls: Any = getattr(importlib.import_module(module), name)
        adapter: MarketAdapter = cls(market, settings, keeper_address)
        return adapter


PROTOCOLS: tuple[Entry, ...] = (
    Entry("aave", AaveSettings, "keeper.protocols.aave_v3.market:AaveV3Market"),
    Entry("comet", CometSettings, "keeper.protocols.comet.market:CometMarketAdapter", many=True),
    Entry(
        "perps", PerpsSettings, "keeper.protocols.synthetix_perps.market:PerpsMarketAdapter", needs_native_asset=False
    ),
)


def entry(table: str) -> Entry:
    for e in PROTOCOLS:
        if e.table == table:
            return e
    raise KeyError(table)


def build_markets(settings: Settings, keeper_address: str) -> list[MarketAdapter]:
    """One adapter per configured market, in registry order."""
    return [e.build(m, settings, keeper_address) for e in PROTOCOLS for m in settings.market_tables(e.table)]

"""Typed settings. `keeper.settings` holds the models only (pure: importing it opens nothing and
reads no environment); `keeper.settings.load` reads TOML, the environment and env files."""

from keeper.settings.models import (
    MULTICALL3,
    Address,
    CoreSettings,
    ExecutionSettings,
    FeedSettings,
    FlashSettings,
    LiquidateSettings,
    Model,
    OpsSettings,
    OracleSettings,
    PositionOverrides,
    PredictiveSettings,
    ProtectSettings,
    Settings,
    StrTuple,
    check_address,
)

__all__ = [
    "MULTICALL3",
    "Address",
    "CoreSettings",
    "ExecutionSettings",
    "FeedSettings",
    "FlashSettings",
    "LiquidateSettings",
    "Model",
    "OpsSettings",
    "OracleSettings",
    "PositionOverrides",
    "PredictiveSettings",
    "ProtectSettings",
    "Settings",
    "StrTuple",
    "check_address",
]

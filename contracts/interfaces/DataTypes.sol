// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Struct layouts of Aave v3 (`DataTypes` library), as returned by the deployed Pool.
library DataTypes {
  /// Aave's ReserveDataLegacy: what `IPool.getReserveData` returns since v3.2.
  struct ReserveDataLegacy {
    ReserveConfigurationMap configuration;
    uint128 liquidityIndex;
    uint128 currentLiquidityRate;
    uint128 variableBorrowIndex;
    uint128 currentVariableBorrowRate;
    uint128 currentStableBorrowRate;
    uint40 lastUpdateTimestamp;
    uint16 id;
    address aTokenAddress;
    address stableDebtTokenAddress;
    address variableDebtTokenAddress;
    address interestRateStrategyAddress;
    uint128 accruedToTreasury;
    uint128 unbacked;
    uint128 isolationModeTotalDebt;
  }

  /// bit 0-15 LTV, 16-31 liquidation threshold, 32-47 liquidation bonus, 48-55 decimals,
  /// 56 active, 57 frozen, 58 borrowing enabled, 60 paused, 64-79 reserve factor,
  /// 80-115 borrow cap, 116-151 supply cap, 152-167 liquidation protocol fee.
  /// What getEModeCategoryData returns (v3.0's EModeCategory; kept as the legacy view from v3.2).
  struct EModeCategoryLegacy {
    uint16 ltv;
    uint16 liquidationThreshold;
    uint16 liquidationBonus;
    address priceSource;
    string label;
  }

  struct ReserveConfigurationMap {
    uint256 data;
  }

  /// bit 2*id: borrowing reserve id; bit 2*id+1: using reserve id as collateral.
  struct UserConfigurationMap {
    uint256 data;
  }

  enum InterestRateMode {
    NONE,
    __DEPRECATED,
    VARIABLE
  }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {DataTypes} from "./DataTypes.sol";
import {IPoolErrors} from "./IPoolErrors.sol";

/// The part of Aave v3's IPool that keeper uses: same signatures and events as the deployed Pool
/// (v3.0 to v3.7; the e-mode and grace-period views of v3.1+/v3.2+ are answered by every version
/// keeper reads them on).
interface IPool is IPoolErrors {
  event Supply(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint16 indexed referralCode);
  event Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount);
  event Borrow(
    address indexed reserve,
    address user,
    address indexed onBehalfOf,
    uint256 amount,
    DataTypes.InterestRateMode interestRateMode,
    uint256 borrowRate,
    uint16 indexed referralCode
  );
  event Repay(address indexed reserve, address indexed user, address indexed repayer, uint256 amount, bool useATokens);
  event LiquidationCall(
    address indexed collateralAsset,
    address indexed debtAsset,
    address indexed user,
    uint256 debtToCover,
    uint256 liquidatedCollateralAmount,
    address liquidator,
    bool receiveAToken
  );
  event ReserveDataUpdated(
    address indexed reserve,
    uint256 liquidityRate,
    uint256 stableBorrowRate,
    uint256 variableBorrowRate,
    uint256 liquidityIndex,
    uint256 variableBorrowIndex
  );
  event ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user);
  event ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user);
  event DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated);

  function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external;
  function withdraw(address asset, uint256 amount, address to) external returns (uint256);
  function borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf) external;
  function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256);
  function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external;
  function finalizeTransfer(
    address asset,
    address from,
    address to,
    uint256 amount,
    uint256 balanceFromBefore,
    uint256 balanceToBefore
  ) external;
  function liquidationCall(address collateralAsset, address debtAsset, address user, uint256 debtToCover, bool receiveAToken) external;

  function getUserAccountData(address user)
    external
    view
    returns (
      uint256 totalCollateralBase,
      uint256 totalDebtBase,
      uint256 availableBorrowsBase,
      uint256 currentLiquidationThreshold,
      uint256 ltv,
      uint256 healthFactor
    );
  function getConfiguration(address asset) external view returns (DataTypes.ReserveConfigurationMap memory);
  function getUserConfiguration(address user) external view returns (DataTypes.UserConfigurationMap memory);
  function getReserveNormalizedIncome(address asset) external view returns (uint256);
  function getReserveNormalizedVariableDebt(address asset) external view returns (uint256);
  function getReserveData(address asset) external view returns (DataTypes.ReserveDataLegacy memory);
  function getReservesList() external view returns (address[] memory);
  function getUserEMode(address user) external view returns (uint256);
  function POOL_REVISION() external view returns (uint256);
  function getEModeCategoryData(uint8 id) external view returns (DataTypes.EModeCategoryLegacy memory);
  function getEModeCategoryCollateralBitmap(uint8 id) external view returns (uint128);
  function getLiquidationGracePeriod(address asset) external view returns (uint40);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// AsyncOrder.OrderCommitmentRequest of Synthetix v3 perps.
struct OrderCommitmentRequest {
  uint128 marketId;
  uint128 accountId;
  int128 sizeDelta;
  uint128 settlementStrategyId;
  uint256 acceptablePrice;
  bytes32 trackingCode;
  address referrer;
}

/// AsyncOrder.Data of Synthetix v3 perps.
struct AsyncOrderData {
  uint256 commitmentTime;
  OrderCommitmentRequest request;
}

/// The part of Synthetix v3's PerpsMarketProxy interface (account, perps account, async order,
/// settlement, liquidation, market and configuration modules) that keeper uses: same
/// signatures, events and errors as synthetix-v3/markets/perps-market. Collateral id 0 is snxUSD.
interface IPerpsMarketProxy {
  error NotEligibleForLiquidation(uint128 accountId);
  error InsufficientMargin(int256 availableMargin, uint256 minMargin);
  error AcceptablePriceExceeded(uint256 fillPrice, uint256 acceptablePrice);
  error PermissionDenied(uint128 accountId, bytes32 permission, address target);
  error AccountNotFound(uint128 accountId);
  error InvalidAmountDelta(int256 amountDelta);
  error OrderNotValid();
  error OrderAlreadyCommitted(uint128 marketId, uint256 orderId);
  error InvalidMarket(uint128 marketId);
  error StalePrice(uint128 marketId, uint256 updatedAt);

  // account module
  event AccountCreated(uint128 indexed accountId, address indexed owner);
  event PermissionGranted(uint128 indexed accountId, bytes32 indexed permission, address indexed user, address sender);

  function createAccount() external returns (uint128 accountId);
  function getAccountOwner(uint128 accountId) external view returns (address);
  function grantPermission(uint128 accountId, bytes32 permission, address user) external;
  function hasPermission(uint128 accountId, bytes32 permission, address user) external view returns (bool);

  // perps account module
  event CollateralModified(
    uint128 indexed accountId, uint128 indexed collateralId, int256 amountDelta, address indexed sender
  );

  function modifyCollateral(uint128 accountId, uint128 collateralId, int256 amountDelta) external;
  function getCollateralAmount(uint128 accountId, uint128 collateralId) external view returns (uint256);
  function totalCollateralValue(uint128 accountId) external view returns (uint256);
  function getAccountOpenPositions(uint128 accountId) external view returns (uint256[] memory);
  function getOpenPosition(uint128 accountId, uint128 marketId)
    external
    view
    returns (int256 totalPnl, int256 accruedFunding, int128 positionSize);
  function getAvailableMargin(uint128 accountId) external view returns (int256 availableMargin);
  function getRequiredMargins(uint128 accountId)
    external
    view
    returns (uint256 requiredInitialMargin, uint256 requiredMaintenanceMargin, uint256 maxLiquidationReward);

  // async orders
  event OrderCommitted(
    uint128 indexed marketId,
    uint128 indexed accountId,
    uint8 orderType,
    int128 sizeDelta,
    uint256 acceptablePrice,
    uint256 commitmentTime,
    uint256 expectedPriceTime,
    uint256 settlementTime,
    uint256 expirationTime,
    bytes32 indexed trackingCode,
    address sender
  );
  event OrderSettled(
    uint128 indexed marketId,
    uint128 indexed accountId,
    uint256 fillPrice,
    int256 pnl,
    int256 accruedFunding,
    int128 sizeDelta,
    int128 newSize,
    uint256 totalFees,
    uint256 referralFees,
    uint256 collectedFees,
    uint256 settlementReward,
    bytes32 indexed trackingCode,
    address settler
  );

  function commitOrder(OrderCommitmentRequest memory commitment)
    external
    returns (AsyncOrderData memory retOrder, uint256 fees);
  function getOrder(uint128 accountId) external view returns (AsyncOrderData memory order);
  function settleOrder(uint128 accountId) external;

  // liquidation
  event PositionLiquidated(
    uint128 indexed accountId, uint128 indexed marketId, uint256 amountLiquidated, int128 currentPositionSize
  );
  event AccountLiquidationAttempt(uint128 indexed accountId, uint256 reward, bool fullLiquidation);

  function liquidate(uint128 accountId) external returns (uint256 liquidationReward);
  function canLiquidate(uint128 accountId) external view returns (bool isEligible);

  // markets and configuration
  function getMarkets() external view returns (uint256[] memory marketIds);
  function metadata(uint128 marketId) external view returns (string memory name, string memory symbol);
  function indexPrice(uint128 marketId) external view returns (uint256);
  function skew(uint128 marketId) external view returns (int256);
  function currentFundingRate(uint128 marketId) external view returns (int256);
  function currentFundingVelocity(uint128 marketId) external view returns (int256);
  function fillPrice(uint128 marketId, int128 orderSize, uint256 price) external view returns (uint256);
  function getFundingParameters(uint128 marketId) external view returns (uint256 skewScale, uint256 maxFundingVelocity);
  function getLiquidationParameters(uint128 marketId)
    external
    view
    returns (
      uint256 initialMarginRatioD18,
      uint256 minimumInitialMarginRatioD18,
      uint256 maintenanceMarginScalarD18,
      uint256 flagRewardRatioD18,
      uint256 minimumPositionMargin
    );
  function getKeeperRewardGuards()
    external
    view
    returns (
      uint256 minKeeperRewardUsd,
      uint256 minKeeperProfitRatioD18,
      uint256 maxKeeperRewardUsd,
      uint256 maxKeeperScalingRatioD18
    );
}

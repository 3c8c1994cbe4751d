// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Compound v3's AssetInfo, as returned by Comet.getAssetInfo / getAssetInfoByAddress.
struct AssetInfo {
  uint8 offset;
  address asset;
  address priceFeed;
  uint64 scale;
  uint64 borrowCollateralFactor;
  uint64 liquidateCollateralFactor;
  uint64 liquidationFactor;
  uint128 supplyCap;
}

/// Compound v3's TotalsBasic, as returned by CometExt.totalsBasic.
struct TotalsBasic {
  uint64 baseSupplyIndex;
  uint64 baseBorrowIndex;
  uint64 trackingSupplyIndex;
  uint64 trackingBorrowIndex;
  uint104 totalSupplyBase;
  uint104 totalBorrowBase;
  uint40 lastAccrualTime;
  uint8 pauseFlags;
}

/// The part of the deployed Comet proxy's interface (CometMainInterface + CometExtInterface +
/// the public storage getters of CometStorage) that keeper uses: same signatures, structs,
/// events and custom errors as compound-finance/comet.
interface IComet {
  error BadAsset();
  error BadPrice();
  error BorrowTooSmall();
  error InsufficientReserves();
  error NotCollateralized();
  error NotForSale();
  error NotLiquidatable();
  error Paused();
  error SupplyCapExceeded();
  error TooMuchSlippage();
  error TransferInFailed();
  error TransferOutFailed();
  error Unauthorized();

  event Supply(address indexed from, address indexed dst, uint256 amount);
  event Transfer(address indexed from, address indexed to, uint256 amount);
  event Approval(address indexed owner, address indexed spender, uint256 amount);
  event Withdraw(address indexed src, address indexed to, uint256 amount);
  event SupplyCollateral(address indexed from, address indexed dst, address indexed asset, uint256 amount);
  event TransferCollateral(address indexed from, address indexed to, address indexed asset, uint256 amount);
  event WithdrawCollateral(address indexed src, address indexed to, address indexed asset, uint256 amount);
  event AbsorbDebt(address indexed absorber, address indexed borrower, uint256 basePaidOut, uint256 usdValue);
  event AbsorbCollateral(
    address indexed absorber, address indexed borrower, address indexed asset, uint256 collateralAbsorbed, uint256 usdValue
  );
  event BuyCollateral(address indexed buyer, address indexed asset, uint256 baseAmount, uint256 collateralAmount);

  // writes
  function supply(address asset, uint256 amount) external;
  function supplyTo(address dst, address asset, uint256 amount) external;
  function withdraw(address asset, uint256 amount) external;
  function withdrawTo(address to, address asset, uint256 amount) external;
  function withdrawFrom(address src, address to, address asset, uint256 amount) external;
  function allow(address manager, bool isAllowed) external;
  function isAllowed(address owner, address manager) external view returns (bool);
  function hasPermission(address owner, address manager) external view returns (bool);
  function absorb(address absorber, address[] calldata accounts) external;
  function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external;
  function accrueAccount(address account) external;

  // market
  function baseToken() external view returns (address);
  function baseTokenPriceFeed() external view returns (address);
  function baseScale() external view returns (uint256);
  function numAssets() external view returns (uint8);
  function getAssetInfo(uint8 i) external view returns (AssetInfo memory);
  function getAssetInfoByAddress(address asset) external view returns (AssetInfo memory);
  function getPrice(address priceFeed) external view returns (uint256);
  function baseBorrowMin() external view returns (uint256);
  function targetReserves() external view returns (uint256);
  function storeFrontPriceFactor() external view returns (uint256);
  function getReserves() external view returns (int256);
  function getCollateralReserves(address asset) external view returns (uint256);
  function quoteCollateral(address asset, uint256 baseAmount) external view returns (uint256);
  function getUtilization() external view returns (uint256);
  function getSupplyRate(uint256 utilization) external view returns (uint64);
  function getBorrowRate(uint256 utilization) external view returns (uint64);
  function supplyKink() external view returns (uint64);
  function supplyPerSecondInterestRateSlopeLow() external view returns (uint64);
  function supplyPerSecondInterestRateSlopeHigh() external view returns (uint64);
  function supplyPerSecondInterestRateBase() external view returns (uint64);
  function borrowKink() external view returns (uint64);
  function borrowPerSecondInterestRateSlopeLow() external view returns (uint64);
  function borrowPerSecondInterestRateSlopeHigh() external view returns (uint64);
  function borrowPerSecondInterestRateBase() external view returns (uint64);
  function totalSupply() external view returns (uint256);
  function totalBorrow() external view returns (uint256);
  function totalsBasic() external view returns (TotalsBasic memory);
  function totalsCollateral(address asset) external view returns (uint128 totalSupplyAsset, uint128 _reserved);
  function isAbsorbPaused() external view returns (bool);
  function isBuyPaused() external view returns (bool);
  function isSupplyPaused() external view returns (bool);

  // accounts
  function userBasic(address account)
    external
    view
    returns (int104 principal, uint64 baseTrackingIndex, uint64 baseTrackingAccrued, uint16 assetsIn, uint8 _reserved);
  function userCollateral(address account, address asset) external view returns (uint128 balance, uint128 _reserved);
  function balanceOf(address account) external view returns (uint256);
  function borrowBalanceOf(address account) external view returns (uint256);
  function collateralBalanceOf(address account, address asset) external view returns (uint128);
  function isLiquidatable(address account) external view returns (bool);
  function isBorrowCollateralized(address account) external view returns (bool);
}

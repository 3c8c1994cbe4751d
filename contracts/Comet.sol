// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";
import {IComet, AssetInfo, TotalsBasic} from "./interfaces/IComet.sol";

/// A compact Compound v3 (Comet)-compatible market for local and test chains.
///
/// Same function signatures, structs, events, custom errors and math as Comet + CometExt:
/// signed base principal with supply/borrow indices (BASE_INDEX_SCALE 1e15) that accrue per second
/// on a kinked utilization curve, collateral balances with the assetsIn bit vector,
/// isLiquidatable / isBorrowCollateralized with each asset's collateral factors, absorb (the
/// protocol takes the whole account, pays its debt from reserves at the liquidation factor), and
/// buyCollateral / quoteCollateral at the store-front discount while reserves are below target.
/// Left out: rewards tracking (the tracking indices stay 0), transfers and allowances/managers,
/// withdrawReserves, the configurator/proxy and the packed immutable asset layout.
contract Comet is IComet {
  uint64 internal constant FACTOR_SCALE = 1e18;
  uint64 internal constant BASE_INDEX_SCALE = 1e15;
  uint8 internal constant PAUSE_SUPPLY_OFFSET = 0;
  uint8 internal constant PAUSE_ABSORB_OFFSET = 3;
  uint8 internal constant PAUSE_BUY_OFFSET = 4;

  struct UserBasic {
    int104 principal;
    uint64 baseTrackingIndex;
    uint64 baseTrackingAccrued;
    uint16 assetsIn;
    uint8 _reserved;
  }

  struct UserCollateral {
    uint128 balance;
    uint128 _reserved;
  }

  struct TotalsCollateral {
    uint128 totalSupplyAsset;
    uint128 _reserved;
  }

  struct Rates {
    uint64 supplyKink;
    uint64 supplyPerSecondInterestRateSlopeLow;
    uint64 supplyPerSecondInterestRateSlopeHigh;
    uint64 supplyPerSecondInterestRateBase;
    uint64 borrowKink;
    uint64 borrowPerSecondInterestRateSlopeLow;
    uint64 borrowPerSecondInterestRateSlopeHigh;
    uint64 borrowPerSecondInterestRateBase;
  }

  address public immutable governor;
  address public immutable baseToken;
  address public immutable baseTokenPriceFeed;
  uint256 public immutable baseScale;
  uint256 public immutable baseBorrowMin;
  uint256 public immutable targetReserves;
  uint256 public immutable storeFrontPriceFactor;
  uint64 public immutable supplyKink;
  uint64 public immutable supplyPerSecondInterestRateSlopeLow;
  uint64 public immutable supplyPerSecondInterestRateSlopeHigh;
  uint64 public immutable supplyPerSecondInterestRateBase;
  uint64 public immutable borrowKink;
  uint64 public immutable borrowPerSecondInterestRateSlopeLow;
  uint64 public immutable borrowPerSecondInterestRateSlopeHigh;
  uint64 public immutable borrowPerSecondInterestRateBase;

  AssetInfo[] internal assets;
  TotalsBasic internal totals;
  mapping(address => UserBasic) public userBasic;
  mapping(address => mapping(address => UserCollateral)) public userCollateral;
  mapping(address => TotalsCollateral) public totalsCollateral;
  /// owner => manager => may it act for the owner (CometExt's `allow`).
  mapping(address => mapping(address => bool)) public isAllowed;

  constructor(
    address baseToken_,
    address baseTokenPriceFeed_,
    uint256 baseBorrowMin_,
    uint256 targetReserves_,
    uint256 storeFrontPriceFactor_,
    Rates memory rates_
  ) {
    governor = msg.sender;
    baseToken = baseToken_;
    baseTokenPriceFeed = baseTokenPriceFeed_;
    baseScale = 10 ** IERC20(baseToken_).decimals();
    baseBorrowMin = baseBorrowMin_;
    targetReserves = targetReserves_;
    storeFrontPriceFactor = storeFrontPriceFactor_;
    supplyKink = rates_.supplyKink;
    supplyPerSecondInterestRateSlopeLow = rates_.supplyPerSecondInterestRateSlopeLow;
    supplyPerSecondInterestRateSlopeHigh = rates_.supplyPerSecondInterestRateSlopeHigh;
    supplyPerSecondInterestRateBase = rates_.supplyPerSecondInterestRateBase;
    borrowKink = rates_.borrowKink;
    borrowPerSecondInterestRateSlopeLow = rates_.borrowPerSecondInterestRateSlopeLow;
    borrowPerSecondInterestRateSlopeHigh = rates_.borrowPerSecondInterestRateSlopeHigh;
    borrowPerSecondInterestRateBase = rates_.borrowPerSecondInterestRateBase;
    totals.baseSupplyIndex = BASE_INDEX_SCALE;
    totals.baseBorrowIndex = BASE_INDEX_SCALE;
    totals.lastAccrualTime = uint40(block.timestamp);
  }

  // ------------------------------------------------------------------ governance (test only)

  /// List a collateral asset (the real market fixes its assets at deployment/upgrade).
  function addAsset(
    address asset,
    address priceFeed,
    uint64 borrowCollateralFactor,
    uint64 liquidateCollateralFactor,
    uint64 liquidationFactor,
    uint128 supplyCap
  ) external {
    if (msg.sender != governor) revert Unauthorized();
    require(assets.length < 15, "too many assets");
    require(borrowCollateralFactor < liquidateCollateralFactor && liquidateCollateralFactor <= FACTOR_SCALE, "bad cf");
    require(IAggregatorV3(priceFeed).decimals() == 8, "bad decimals");
    assets.push(
      AssetInfo({
        offset: uint8(assets.length),
        asset: asset,
        priceFeed: priceFeed,
        scale: uint64(10 ** IERC20(asset).decimals()),
        borrowCollateralFactor: borrowCollateralFactor,
        liquidateCollateralFactor: liquidateCollateralFactor,
        liquidationFactor: liquidationFactor,
        supplyCap: supplyCap
      })
    );
  }

  function pause(bool supplyPaused, bool absorbPaused, bool buyPaused) external {
    if (msg.sender != governor) revert Unauthorized();
    totals.pauseFlags = (supplyPaused ? uint8(1) << PAUSE_SUPPLY_OFFSET : 0)
      | (absorbPaused ? uint8(1) << PAUSE_ABSORB_OFFSET : 0) | (buyPaused ? uint8(1) << PAUSE_BUY_OFFSET : 0);
  }

  // ------------------------------------------------------------------ market views

  function numAssets() external view returns (uint8) {
    return uint8(assets.length);
  }

  function getAssetInfo(uint8 i) public view returns (AssetInfo memory) {
    if (i >= assets.length) revert BadAsset();
    return assets[i];
  }

  function getAssetInfoByAddress(address asset) public view returns (AssetInfo memory) {
    for (uint8 i = 0; i < assets.length; i++) {
      if (assets[i].asset == asset) return assets[i];
    }
    revert BadAsset();
  }

  function getPrice(address priceFeed) public view returns (uint256) {
    (, int256 price,,,) = IAggregatorV3(priceFeed).latestRoundData();
    if (price <= 0) revert BadPrice();
    return uint256(price);
  }

  function totalsBasic() external view returns (TotalsBasic memory) {
    return totals;
  }

  function isSupplyPaused() public view returns (bool) {
    return totals.pauseFlags & (uint8(1) << PAUSE_SUPPLY_OFFSET) != 0;
  }

  function isAbsorbPaused() public view returns (bool) {
    return totals.pauseFlags & (uint8(1) << PAUSE_ABSORB_OFFSET) != 0;
  }

  function isBuyPaused() public view returns (bool) {
    return totals.pauseFlags & (uint8(1) << PAUSE_BUY_OFFSET) != 0;
  }

  function getUtilization() public view returns (uint256) {
    uint256 totalSupply_ = presentValueSupply(totals.baseSupplyIndex, totals.totalSupplyBase);
    uint256 totalBorrow_ = presentValueBorrow(totals.baseBorrowIndex, totals.totalBorrowBase);
    if (totalSupply_ == 0) return 0;
    return totalBorrow_ * FACTOR_SCALE / totalSupply_;
  }

  function getSupplyRate(uint256 utilization) public view returns (uint64) {
    if (utilization <= supplyKink) {
      return uint64(supplyPerSecondInterestRateBase + mulFactor(supplyPerSecondInterestRateSlopeLow, utilization));
    }
    return uint64(
      supplyPerSecondInterestRateBase + mulFactor(supplyPerSecondInterestRateSlopeLow, supplyKink)
        + mulFactor(supplyPerSecondInterestRateSlopeHigh, utilization - supplyKink)
    );
  }

  function getBorrowRate(uint256 utilization) public view returns (uint64) {
    if (utilization <= borrowKink) {
      return uint64(borrowPerSecondInterestRateBase + mulFactor(borrowPerSecondInterestRateSlopeLow, utilization));
    }
    return uint64(
      borrowPerSecondInterestRateBase + mulFactor(borrowPerSecondInterestRateSlopeLow, borrowKink)
        + mulFactor(borrowPerSecondInterestRateSlopeHigh, utilization - borrowKink)
    );
  }

  function totalSupply() external view returns (uint256) {
    (uint64 supplyIndex,) = accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
    return presentValueSupply(supplyIndex, totals.totalSupplyBase);
  }

  function totalBorrow() external view returns (uint256) {
    (, uint64 borrowIndex) = accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
    return presentValueBorrow(borrowIndex, totals.totalBorrowBase);
  }

  function getReserves() public view returns (int256) {
    (uint64 supplyIndex, uint64 borrowIndex) = accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
    uint256 balance = IERC20(baseToken).balanceOf(address(this));
    uint256 totalSupply_ = presentValueSupply(supplyIndex, totals.totalSupplyBase);
    uint256 totalBorrow_ = presentValueBorrow(borrowIndex, totals.totalBorrowBase);
    return int256(balance) - int256(totalSupply_) + int256(totalBorrow_);
  }

  function getCollateralReserves(address asset) public view returns (uint256) {
    return IERC20(asset).balanceOf(address(this)) - totalsCollateral[asset].totalSupplyAsset;
  }

  function quoteCollateral(address asset, uint256 baseAmount) public view returns (uint256) {
    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    uint256 assetPrice = getPrice(assetInfo.priceFeed);
    uint256 discountFactor = mulFactor(storeFrontPriceFactor, FACTOR_SCALE - assetInfo.liquidationFactor);
    uint256 assetPriceDiscounted = mulFactor(assetPrice, FACTOR_SCALE - discountFactor);
    uint256 basePrice = getPrice(baseTokenPriceFeed);
    return basePrice * baseAmount * assetInfo.scale / assetPriceDiscounted / baseScale;
  }

  // ------------------------------------------------------------------ account views

  function balanceOf(address account) public view returns (uint256) {
    (uint64 supplyIndex,) = accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
    int104 principal = userBasic[account].principal;
    return principal > 0 ? presentValueSupply(supplyIndex, uint104(principal)) : 0;
  }

  function borrowBalanceOf(address account) public view returns (uint256) {
    (, uint64 borrowIndex) = accruedInterestIndices(block.timestamp - totals.lastAccrualTime);
    int104 principal = userBasic[account].principal;
    return principal < 0 ? presentValueBorrow(borrowIndex, uint104(-principal)) : 0;
  }

  function collateralBalanceOf(address account, address asset) external view returns (uint128) {
    return userCollateral[account][asset].balance;
  }

  function isBorrowCollateralized(address account) public view returns (bool) {
    return liquidity(account, false) >= 0;
  }

  function isLiquidatable(address account) public view returns (bool) {
    return liquidity(account, true) < 0;
  }

  /// Comet's liquidity loop: base present value (stored indices) at the base price, plus each
  /// collateral's value times its borrow or liquidate collateral factor. Comet returns early
  /// once the sum is non-negative; the sum only grows, so the result is the same.
  function liquidity(address account, bool liquidate) internal view returns (int256 liq) {
    int104 principal = userBasic[account].principal;
    if (principal >= 0) return 0;
    uint16 assetsIn = userBasic[account].assetsIn;
    liq = signedMulPrice(presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));
    for (uint8 i = 0; i < assets.length; i++) {
      if (assetsIn & (uint16(1) << i) != 0) {
        AssetInfo memory asset = assets[i];
        uint256 value = mulPrice(userCollateral[account][asset.asset].balance, getPrice(asset.priceFeed), asset.scale);
        liq += int256(mulFactor(value, liquidate ? asset.liquidateCollateralFactor : asset.borrowCollateralFactor));
      }
    }
  }

  // ------------------------------------------------------------------ writes

  function supply(address asset, uint256 amount) external {
    supplyInternal(msg.sender, msg.sender, asset, amount);
  }

  function supplyTo(address dst, address asset, uint256 amount) external {
    supplyInternal(msg.sender, dst, asset, amount);
  }

  function withdraw(address asset, uint256 amount) external {
    withdrawInternal(msg.sender, msg.sender, asset, amount);
  }

  function withdrawTo(address to, address asset, uint256 amount) external {
    withdrawInternal(msg.sender, to, asset, amount);
  }

  /// A manager withdraws for `src` (allowed by src through `allow`, as CometExt's).
  function withdrawFrom(address src, address to, address asset, uint256 amount) external {
    if (!hasPermission(src, msg.sender)) revert Unauthorized();
    withdrawInternal(src, to, asset, amount);
  }

  function allow(address manager, bool isAllowed_) external {
    isAllowed[msg.sender][manager] = isAllowed_;
    emit Approval(msg.sender, manager, isAllowed_ ? type(uint256).max : 0);
  }

  function hasPermission(address owner, address manager) public view returns (bool) {
    return owner == manager || isAllowed[owner][manager];
  }

  function accrueAccount(address) external {
    accrueInternal();
  }

  function supplyInternal(address from, address dst, address asset, uint256 amount) internal {
    if (isSupplyPaused()) revert Paused();
    if (asset == baseToken) {
      if (amount == type(uint256).max) amount = borrowBalanceOf(dst);
      supplyBase(from, dst, amount);
    } else {
      supplyCollateral(from, dst, asset, uint128(amount));
    }
  }

  function supplyBase(address from, address dst, uint256 amount) internal {
    doTransferIn(baseToken, from, amount);
    accrueInternal();
    int104 dstPrincipal = userBasic[dst].principal;
    int256 dstBalance = presentValue(dstPrincipal) + int256(amount);
    int104 dstPrincipalNew = principalValue(dstBalance);
    (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(dstPrincipal, dstPrincipalNew);
    totals.totalSupplyBase += supplyAmount;
    totals.totalBorrowBase -= repayAmount;
    userBasic[dst].principal = dstPrincipalNew;
    emit Supply(from, dst, amount);
    if (supplyAmount > 0) emit Transfer(address(0), dst, presentValueSupply(totals.baseSupplyIndex, supplyAmount));
  }

  function supplyCollateral(address from, address dst, address asset, uint128 amount) internal {
    doTransferIn(asset, from, amount);
    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    TotalsCollateral memory tc = totalsCollateral[asset];
    tc.totalSupplyAsset += amount;
    if (tc.totalSupplyAsset > assetInfo.supplyCap) revert SupplyCapExceeded();
    uint128 dstCollateral = userCollateral[dst][asset].balance;
    uint128 dstCollateralNew = dstCollateral + amount;
    totalsCollateral[asset] = tc;
    userCollateral[dst][asset].balance = dstCollateralNew;
    updateAssetsIn(dst, assetInfo, dstCollateral, dstCollateralNew);
    emit SupplyCollateral(from, dst, asset, amount);
  }

  function withdrawInternal(address src, address to, address asset, uint256 amount) internal {
    if (asset == baseToken) {
      if (amount == type(uint256).max) amount = balanceOf(src);
      withdrawBase(src, to, amount);
    } else {
      withdrawCollateral(src, to, asset, uint128(amount));
    }
  }

  function withdrawBase(address src, address to, uint256 amount) internal {
    accrueInternal();
    int104 srcPrincipal = userBasic[src].principal;
    int256 srcBalance = presentValue(srcPrincipal) - int256(amount);
    int104 srcPrincipalNew = principalValue(srcBalance);
    (uint104 withdrawAmount, uint104 borrowAmount) = withdrawAndBorrowAmount(srcPrincipal, srcPrincipalNew);
    totals.totalSupplyBase -= withdrawAmount;
    totals.totalBorrowBase += borrowAmount;
    userBasic[src].principal = srcPrincipalNew;
    if (srcBalance < 0) {
      if (uint256(-srcBalance) < baseBorrowMin) revert BorrowTooSmall();
      if (!isBorrowCollateralized(src)) revert NotCollateralized();
    }
    doTransferOut(baseToken, to, amount);
    emit Withdraw(src, to, amount);
    if (withdrawAmount > 0) emit Transfer(src, address(0), presentValueSupply(totals.baseSupplyIndex, withdrawAmount));
  }

  function withdrawCollateral(address src, address to, address asset, uint128 amount) internal {
    uint128 srcCollateral = userCollateral[src][asset].balance;
    uint128 srcCollateralNew = srcCollateral - amount;
    totalsCollateral[asset].totalSupplyAsset -= amount;
    userCollateral[src][asset].balance = srcCollateralNew;
    updateAssetsIn(src, getAssetInfoByAddress(asset), srcCollateral, srcCollateralNew);
    if (!isBorrowCollateralized(src)) revert NotCollateralized();
    doTransferOut(asset, to, amount);
    emit WithdrawCollateral(src, to, asset, amount);
  }

  // ------------------------------------------------------------------ liquidation

  function absorb(address absorber, address[] calldata accounts) external {
    if (isAbsorbPaused()) revert Paused();
    accrueInternal();
    for (uint256 i = 0; i < accounts.length; i++) {
      absorbInternal(absorber, accounts[i]);
    }
  }

  function absorbInternal(address absorber, address account) internal {
    if (!isLiquidatable(account)) revert NotLiquidatable();
    int104 oldPrincipal = userBasic[account].principal;
    int256 oldBalance = presentValue(oldPrincipal);
    uint16 assetsIn = userBasic[account].assetsIn;
    uint256 basePrice = getPrice(baseTokenPriceFeed);
    uint256 deltaValue = 0;
    for (uint8 i = 0; i < assets.length; i++) {
      if (assetsIn & (uint16(1) << i) != 0) {
        AssetInfo memory assetInfo = assets[i];
        address asset = assetInfo.asset;
        uint128 seizeAmount = userCollateral[account][asset].balance;
        userCollateral[account][asset].balance = 0;
        totalsCollateral[asset].totalSupplyAsset -= seizeAmount;
        uint256 value = mulPrice(seizeAmount, getPrice(assetInfo.priceFeed), assetInfo.scale);
        deltaValue += mulFactor(value, assetInfo.liquidationFactor);
        emit AbsorbCollateral(absorber, account, asset, seizeAmount, value);
      }
    }
    uint256 deltaBalance = divPrice(deltaValue, basePrice, uint64(baseScale));
    int256 newBalance = oldBalance + int256(deltaBalance);
    if (newBalance < 0) newBalance = 0;
    int104 newPrincipal = principalValue(newBalance);
    userBasic[account].principal = newPrincipal;
    userBasic[account].assetsIn = 0;
    (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(oldPrincipal, newPrincipal);
    totals.totalSupplyBase += supplyAmount;
    totals.totalBorrowBase -= repayAmount;
    uint256 basePaidOut = uint256(newBalance - oldBalance);
    uint256 valueOfBasePaidOut = mulPrice(uint128(basePaidOut), basePrice, uint64(baseScale));
    emit AbsorbDebt(absorber, account, basePaidOut, valueOfBasePaidOut);
    if (newPrincipal > 0) {
      emit Transfer(address(0), account, presentValueSupply(totals.baseSupplyIndex, uint104(newPrincipal)));
    }
  }

  function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external {
    if (isBuyPaused()) revert Paused();
    int256 reserves = getReserves();
    if (reserves >= 0 && uint256(reserves) >= targetReserves) revert NotForSale();
    doTransferIn(baseToken, msg.sender, baseAmount);
    uint256 collateralAmount = quoteCollateral(asset, baseAmount);
    if (collateralAmount < minAmount) revert TooMuchSlippage();
    if (collateralAmount > getCollateralReserves(asset)) revert InsufficientReserves();
    doTransferOut(asset, recipient, collateralAmount);
    emit BuyCollateral(msg.sender, asset, baseAmount, collateralAmount);
  }

  // ------------------------------------------------------------------ internals (Comet's math)

  function accruedInterestIndices(uint256 timeElapsed) internal view returns (uint64, uint64) {
    uint64 supplyIndex = totals.baseSupplyIndex;
    uint64 borrowIndex = totals.baseBorrowIndex;
    if (timeElapsed > 0) {
      uint256 utilization = getUtilization();
      uint256 supplyRate = getSupplyRate(utilization);
      uint256 borrowRate = getBorrowRate(utilization);
      supplyIndex += uint64(mulFactor(supplyIndex, supplyRate * timeElapsed));
      borrowIndex += uint64(mulFactor(borrowIndex, borrowRate * timeElapsed));
    }
    return (supplyIndex, borrowIndex);
  }

  function accrueInternal() internal {
    uint256 timeElapsed = block.timestamp - totals.lastAccrualTime;
    if (timeElapsed > 0) {
      (totals.baseSupplyIndex, totals.baseBorrowIndex) = accruedInterestIndices(timeElapsed);
      totals.lastAccrualTime = uint40(block.timestamp);
    }
  }

  function presentValue(int104 principalValue_) internal view returns (int256) {
    if (principalValue_ >= 0) return int256(presentValueSupply(totals.baseSupplyIndex, uint104(principalValue_)));
    return -int256(presentValueBorrow(totals.baseBorrowIndex, uint104(-principalValue_)));
  }

  function presentValueSupply(uint64 baseSupplyIndex_, uint104 principalValue_) internal pure returns (uint256) {
    return uint256(principalValue_) * baseSupplyIndex_ / BASE_INDEX_SCALE;
  }

  function presentValueBorrow(uint64 baseBorrowIndex_, uint104 principalValue_) internal pure returns (uint256) {
    return uint256(principalValue_) * baseBorrowIndex_ / BASE_INDEX_SCALE;
  }

  function principalValue(int256 presentValue_) internal view returns (int104) {
    if (presentValue_ >= 0) {
      return int104(uint104(uint256(presentValue_) * BASE_INDEX_SCALE / totals.baseSupplyIndex));
    }
    uint64 index = totals.baseBorrowIndex;
    return -int104(uint104((uint256(-presentValue_) * BASE_INDEX_SCALE + index - 1) / index));
  }

  function repayAndSupplyAmount(int104 balance, int104 newBalance) internal pure returns (uint104, uint104) {
    if (newBalance < balance) return (0, 0);
    if (newBalance <= 0) return (uint104(newBalance - balance), 0);
    if (balance >= 0) return (0, uint104(newBalance - balance));
    return (uint104(-balance), uint104(newBalance));
  }

  function withdrawAndBorrowAmount(int104 balance, int104 newBalance) internal pure returns (uint104, uint104) {
    if (newBalance > balance) return (0, 0);
    if (newBalance >= 0) return (uint104(balance - newBalance), 0);
    if (balance <= 0) return (0, uint104(balance - newBalance));
    return (uint104(balance), uint104(-newBalance));
  }

  function updateAssetsIn(address account, AssetInfo memory assetInfo, uint128 initial, uint128 final_) internal {
    if (initial == 0 && final_ != 0) userBasic[account].assetsIn |= (uint16(1) << assetInfo.offset);
    else if (initial != 0 && final_ == 0) userBasic[account].assetsIn &= ~(uint16(1) << assetInfo.offset);
  }

  function mulFactor(uint256 n, uint256 factor) internal pure returns (uint256) {
    return n * factor / FACTOR_SCALE;
  }

  function mulPrice(uint128 n, uint256 price, uint64 fromScale) internal pure returns (uint256) {
    return uint256(n) * price / fromScale;
  }

  function signedMulPrice(int256 n, uint256 price, uint64 fromScale) internal pure returns (int256) {
    return n * int256(price) / int256(uint256(fromScale));
  }

  function divPrice(uint256 n, uint256 price, uint64 toScale) internal pure returns (uint256) {
    return n * toScale / price;
  }

  function doTransferIn(address asset, address from, uint256 amount) internal {
    if (!IERC20(asset).transferFrom(from, address(this), amount)) revert TransferInFailed();
  }

  function doTransferOut(address asset, address to, uint256 amount) internal {
    if (!IERC20(asset).transfer(to, amount)) revert TransferOutFailed();
  }
}

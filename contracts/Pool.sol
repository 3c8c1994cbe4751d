// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {IPool} from "./interfaces/IPool.sol";
import {IAaveOracle} from "./interfaces/IAaveOracle.sol";
import {DataTypes} from "./interfaces/DataTypes.sol";
import {MathLib} from "./MathLib.sol";
import {AToken, VariableDebtToken} from "./ScaledTokens.sol";

/// A compact Aave v3.3-compatible Pool for local and test chains.
///
/// Same function signatures, events, reserve/user configuration bitmaps, index accrual
/// (linear liquidity index, compounded variable borrow index), account-data math, validation
/// rules, v3.3 liquidation rules (close factor, dust, bonus, protocol fee, deficit) and aToken
/// transfers (finalizeTransfer) as Aave's Pool. Left out: e-mode, isolation mode, stable debt, caps, flash loans, credit delegation,
/// the PoolAddressesProvider. Interest rates come from a fixed per-reserve variable borrow rate
/// set by the admin; the liquidity rate follows utilization (rate x utilization x (1 - reserve factor)).
contract Pool is IPool {
  using MathLib for uint256;

  uint256 public constant HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1e18;
  uint256 public constant CLOSE_FACTOR_HF_THRESHOLD = 0.95e18;
  uint256 public constant DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4;
  uint256 public constant MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000e8;
  uint256 public constant MIN_LEFTOVER_BASE = 1000e8;

  struct Reserve {
    uint256 configuration;
    uint128 liquidityIndex;
    uint128 currentLiquidityRate;
    uint128 variableBorrowIndex;
    uint128 currentVariableBorrowRate;
    uint40 lastUpdateTimestamp;
    uint16 id;
    address aTokenAddress;
    address variableDebtTokenAddress;
    uint128 deficit;
  }

  struct AccountVars {
    uint256 totalCollateral;
    uint256 totalDebt;
    uint256 avgLtv;
    uint256 avgLiquidationThreshold;
    uint256 healthFactor;
    bool hasZeroLtvCollateral;
  }

  struct LiquidationVars {
    uint256 userCollateralBalance;
    uint256 userReserveDebt;
    uint256 collateralPrice;
    uint256 debtPrice;
    uint256 collateralUnit;
    uint256 debtUnit;
    uint256 liquidationBonus;
    uint256 maxLiquidatableDebt;
    uint256 actualDebt;
    uint256 actualCollateral;
    uint256 protocolFee;
    uint256 collateralInBase;
  }

  IAaveOracle public immutable ORACLE;
  address public immutable admin;
  mapping(address => Reserve) internal _reserves;
  address[] internal _reservesList;
  mapping(address => uint256) internal _usersConfig;

  modifier onlyAdmin() {
    require(msg.sender == admin, "1"); // CALLER_NOT_POOL_ADMIN
    _;
  }

  constructor(address oracle) {
    ORACLE = IAaveOracle(oracle);
    admin = msg.sender;
  }

  // ---------------------------------------------------------------- admin

  function initReserve(address asset, address aToken, address variableDebtToken, uint256 configuration, uint128 variableBorrowRate)
    external
    onlyAdmin
  {
    require(_reserves[asset].aTokenAddress == address(0), "14"); // RESERVE_ALREADY_INITIALIZED
    require(_reservesList.length < 128, "RESERVES_LIMIT");
    _reserves[asset] = Reserve({
      configuration: configuration,
      liquidityIndex: uint128(MathLib.RAY),
      currentLiquidityRate: 0,
      variableBorrowIndex: uint128(MathLib.RAY),
      currentVariableBorrowRate: variableBorrowRate,
      lastUpdateTimestamp: uint40(block.timestamp),
      id: uint16(_reservesList.length),
      aTokenAddress: aToken,
      variableDebtTokenAddress: variableDebtToken,
      deficit: 0
    });
    _reservesList.push(asset);
  }

  function setConfiguration(address asset, uint256 configuration) external onlyAdmin {
    _reserves[asset].configuration = configuration;
  }

  function setVariableBorrowRate(address asset, uint128 variableBorrowRate) external onlyAdmin {
    Reserve storage r = _reserves[asset];
    _updateState(r);
    r.currentVariableBorrowRate = variableBorrowRate;
    _updateRates(asset, r);
  }

  /// Test-chain seeding (not part of Aave): opens many positions in one transaction, as if each
  /// user had supplied `collateralAmounts[k]` and borrowed `debtAmounts[k]`. The admin funds the
  /// collateral aToken with the underlying separately; borrowed liquidity does not leave the pool.
  function seedPositions(
    address collateral,
    address debt,
    address[] calldata users,
    uint256[] calldata collateralAmounts,
    uint256[] calldata debtAmounts
  ) external onlyAdmin {
    Reserve storage cr = _reserves[collateral];
    Reserve storage dr = _reserves[debt];
    _updateState(cr);
    _updateState(dr);
    for (uint256 k = 0; k < users.length; k++) {
      address user = users[k];
      AToken(cr.aTokenAddress).mint(msg.sender, user, collateralAmounts[k], cr.liquidityIndex);
      _setUsingAsCollateral(user, cr.id, true);
      emit Supply(collateral, user, user, collateralAmounts[k], 0);
      if (debtAmounts[k] != 0) {
        VariableDebtToken(dr.variableDebtTokenAddress).mint(user, user, debtAmounts[k], dr.variableBorrowIndex);
        _setBorrowing(user, dr.id, true);
        emit Borrow(debt, user, user, debtAmounts[k], DataTypes.InterestRateMode.VARIABLE, dr.currentVariableBorrowRate, 0);
      }
    }
    _updateRates(collateral, cr);
    _updateRates(debt, dr);
  }

  // ---------------------------------------------------------------- user actions

  function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external {
    Reserve storage r = _reserves[asset];
    _validateActive(r.configuration, true);
    require(amount != 0, "26"); // INVALID_AMOUNT
    _updateState(r);
    require(IERC20(asset).transferFrom(msg.sender, r.aTokenAddress, amount), "supply: transfer failed");
    bool isFirstSupply = AToken(r.aTokenAddress).mint(msg.sender, onBehalfOf, amount, r.liquidityIndex);
    if (isFirstSupply && _ltv(r.configuration) != 0 && !_isUsingAsCollateral(onBehalfOf, r.id)) {
      _setUsingAsCollateral(onBehalfOf, r.id, true);
      emit ReserveUsedAsCollateralEnabled(asset, onBehalfOf);
    }
    _updateRates(asset, r);
    emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
  }

  function withdraw(address asset, uint256 amount, address to) external returns (uint256) {
    Reserve storage r = _reserves[asset];
    _validateActive(r.configuration, false);
    _updateState(r);
    uint256 userBalance = AToken(r.aTokenAddress).scaledBalanceOf(msg.sender).rayMul(r.liquidityIndex);
    uint256 amountToWithdraw = amount == type(uint256).max ? userBalance : amount;
    require(amountToWithdraw != 0, "26"); // INVALID_AMOUNT
    require(amountToWithdraw <= userBalance, "32"); // NOT_ENOUGH_AVAILABLE_USER_BALANCE
    AToken(r.aTokenAddress).burn(msg.sender, to, amountToWithdraw, r.liquidityIndex);
    bool wasCollateral = _isUsingAsCollateral(msg.sender, r.id);
    if (wasCollateral && amountToWithdraw == userBalance) {
      _setUsingAsCollateral(msg.sender, r.id, false);
      emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
    }
    if (wasCollateral && _isBorrowingAny(msg.sender)) _validateHealthFactorAndLtv(msg.sender, r.configuration);
    _updateRates(asset, r);
    emit Withdraw(asset, msg.sender, to, amountToWithdraw);
    return amountToWithdraw;
  }

  function borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf) external {
    Reserve storage r = _reserves[asset];
    require(interestRateMode == uint256(DataTypes.InterestRateMode.VARIABLE), "31"); // INVALID_INTEREST_RATE_MODE_SELECTED
    require(onBehalfOf == msg.sender, "credit delegation is not implemented by this test pool");
    _validateActive(r.configuration, true);
    require((r.configuration >> 58) & 1 == 1, "30"); // BORROWING_NOT_ENABLED
    require(amount != 0, "26");
    _updateState(r);
    require(amount <= IERC20(asset).balanceOf(r.aTokenAddress), "NOT_ENOUGH_LIQUIDITY");
    AccountVars memory a = _accountData(onBehalfOf);
    require(a.totalCollateral != 0, "34"); // COLLATERAL_BALANCE_IS_ZERO
    require(a.avgLtv != 0, "57"); // LTV_VALIDATION_FAILED
    require(a.healthFactor > HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "35"); // HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD
    uint256 amountInBase = (ORACLE.getAssetPrice(asset) * amount) / (10 ** _decimals(r.configuration));
    require((a.totalDebt + amountInBase).percentDiv(a.avgLtv) <= a.totalCollateral, "36"); // COLLATERAL_CANNOT_COVER_NEW_BORROW
    VariableDebtToken(r.variableDebtTokenAddress).mint(msg.sender, onBehalfOf, amount, r.variableBorrowIndex);
    _setBorrowing(onBehalfOf, r.id, true);
    AToken(r.aTokenAddress).transferUnderlyingTo(msg.sender, amount);
    _updateRates(asset, r);
    emit Borrow(asset, msg.sender, onBehalfOf, amount, DataTypes.InterestRateMode.VARIABLE, r.currentVariableBorrowRate, referralCode);
  }

  function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256) {
    Reserve storage r = _reserves[asset];
    require(interestRateMode == uint256(DataTypes.InterestRateMode.VARIABLE), "31");
    _validateActive(r.configuration, false);
    require(amount != 0, "26");
    _updateState(r);
    uint256 debt = VariableDebtToken(r.variableDebtTokenAddress).scaledBalanceOf(onBehalfOf).rayMul(r.variableBorrowIndex);
    require(debt != 0, "39"); // NO_DEBT_OF_SELECTED_TYPE
    require(amount != type(uint256).max || msg.sender == onBehalfOf, "40"); // NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF
    uint256 paybackAmount = amount < debt ? amount : debt;
    VariableDebtToken(r.variableDebtTokenAddress).burn(onBehalfOf, paybackAmount, r.variableBorrowIndex);
    if (paybackAmount == debt) _setBorrowing(onBehalfOf, r.id, false);
    require(IERC20(asset).transferFrom(msg.sender, r.aTokenAddress, paybackAmount), "repay: transfer failed");
    _updateRates(asset, r);
    emit Repay(asset, onBehalfOf, msg.sender, paybackAmount, false);
    return paybackAmount;
  }

  function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external {
    Reserve storage r = _reserves[asset];
    _validateActive(r.configuration, false);
    require(AToken(r.aTokenAddress).scaledBalanceOf(msg.sender) != 0, "43"); // UNDERLYING_BALANCE_ZERO
    if (useAsCollateral == _isUsingAsCollateral(msg.sender, r.id)) return;
    if (useAsCollateral) {
      require(_ltv(r.configuration) != 0, "USER_IN_ISOLATION_MODE_OR_LTV_ZERO");
      _setUsingAsCollateral(msg.sender, r.id, true);
      emit ReserveUsedAsCollateralEnabled(asset, msg.sender);
    } else {
      _setUsingAsCollateral(msg.sender, r.id, false);
      if (_isBorrowingAny(msg.sender)) _validateHealthFactorAndLtv(msg.sender, r.configuration);
      emit ReserveUsedAsCollateralDisabled(asset, msg.sender);
    }
  }

  /// An aToken transfer: the sender must stay healthy if the asset is its collateral, and the
  /// collateral flags follow the balances (SupplyLogic.executeFinalizeTransfer).
  function finalizeTransfer(address asset, address from, address to, uint256 amount, uint256 fromBefore, uint256 toBefore)
    external
  {
    Reserve storage r = _reserves[asset];
    require(msg.sender == r.aTokenAddress, "11"); // CALLER_NOT_ATOKEN
    require((r.configuration >> 60) & 1 == 0, "29"); // RESERVE_PAUSED
    if (from == to || amount == 0) return;
    if (_isUsingAsCollateral(from, r.id)) {
      if (_isBorrowingAny(from)) _validateHealthFactorAndLtv(from, r.configuration);
      if (fromBefore == amount) {
        _setUsingAsCollateral(from, r.id, false);
        emit ReserveUsedAsCollateralDisabled(asset, from);
      }
    }
    if (toBefore == 0 && _ltv(r.configuration) != 0 && !_isUsingAsCollateral(to, r.id)) {
      _setUsingAsCollateral(to, r.id, true);
      emit ReserveUsedAsCollateralEnabled(asset, to);
    }
  }

  function liquidationCall(address collateralAsset, address debtAsset, address user, uint256 debtToCover, bool receiveAToken)
    external
  {
    Reserve storage cr = _reserves[collateralAsset];
    Reserve storage dr = _reserves[debtAsset];
    _updateState(dr);
    AccountVars memory a = _accountData(user);
    LiquidationVars memory v;
    v.userCollateralBalance = AToken(cr.aTokenAddress).balanceOf(user);
    v.userReserveDebt = VariableDebtToken(dr.variableDebtTokenAddress).balanceOf(user);

    _validateActive(cr.configuration, false);
    _validateActive(dr.configuration, false);
    require(a.healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "45"); // HEALTH_FACTOR_NOT_BELOW_THRESHOLD
    require(_liquidationThreshold(cr.configuration) != 0 && _isUsingAsCollateral(user, cr.id), "46"); // COLLATERAL_CANNOT_BE_LIQUIDATED
    require(v.userReserveDebt != 0, "47"); // SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER

    v.liquidationBonus = (cr.configuration >> 32) & 0xFFFF;
    v.collateralPrice = ORACLE.getAssetPrice(collateralAsset);
    v.debtPrice = ORACLE.getAssetPrice(debtAsset);
    v.collateralUnit = 10 ** _decimals(cr.configuration);
    v.debtUnit = 10 ** _decimals(dr.configuration);

    // v3.3 close factor: 100% by default; 50% of the total debt when this reserve's collateral and
    // debt are both worth at least MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD and HF > 0.95.
    v.maxLiquidatableDebt = v.userReserveDebt;
    if (
      (v.userCollateralBalance * v.collateralPrice) / v.collateralUnit >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD &&
      (v.userReserveDebt * v.debtPrice) / v.debtUnit >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD &&
      a.healthFactor > CLOSE_FACTOR_HF_THRESHOLD
    ) {
      uint256 defaultLiquidatableBase = a.totalDebt.percentMul(DEFAULT_LIQUIDATION_CLOSE_FACTOR);
      if ((v.userReserveDebt * v.debtPrice) / v.debtUnit > defaultLiquidatableBase) {
        v.maxLiquidatableDebt = (defaultLiquidatableBase * v.debtUnit) / v.debtPrice;
      }
    }
    v.actualDebt = debtToCover > v.maxLiquidatableDebt ? v.maxLiquidatableDebt : debtToCover;
    _calculateCollateral(v, cr.configuration);

    // No dust: liquidate all the debt, or all the collateral, or leave at least MIN_LEFTOVER_BASE of both.
    if (v.actualDebt < v.userReserveDebt && v.actualCollateral + v.protocolFee < v.userCollateralBalance) {
      require(
        ((v.userReserveDebt - v.actualDebt) * v.debtPrice) / v.debtUnit >= MIN_LEFTOVER_BASE &&
          ((v.userCollateralBalance - v.actualCollateral) * v.collateralPrice) / v.collateralUnit >= MIN_LEFTOVER_BASE,
        "103" // MUST_NOT_LEAVE_DUST
      );
    }
    if (v.actualCollateral + v.protocolFee == v.userCollateralBalance) {
      _setUsingAsCollateral(user, cr.id, false);
      emit ReserveUsedAsCollateralDisabled(collateralAsset, user);
    }
    bool hasNoCollateralLeft = a.totalCollateral == v.collateralInBase;
    _burnDebt(dr, debtAsset, user, v.userReserveDebt, v.actualDebt, hasNoCollateralLeft);

    _updateState(cr);
    if (receiveAToken) {
      AToken(cr.aTokenAddress).transferOnLiquidation(user, msg.sender, v.actualCollateral);
    } else {
      AToken(cr.aTokenAddress).burn(user, msg.sender, v.actualCollateral, cr.liquidityIndex);
    }
    if (v.protocolFee != 0) {
      // as LiquidationLogic: never more aTokens than the user has left (1 wei of rounding)
      uint256 index = getReserveNormalizedIncome(collateralAsset);
      uint256 scaledLeft = AToken(cr.aTokenAddress).scaledBalanceOf(user);
      if (v.protocolFee.rayDiv(index) > scaledLeft) v.protocolFee = scaledLeft.rayMul(index);
      AToken(cr.aTokenAddress).transferOnLiquidation(user, AToken(cr.aTokenAddress).RESERVE_TREASURY_ADDRESS(), v.protocolFee);
    }
    if (hasNoCollateralLeft && _isBorrowingAny(user)) _burnBadDebt(user);
    _updateRates(collateralAsset, cr);

    require(IERC20(debtAsset).transferFrom(msg.sender, dr.aTokenAddress, v.actualDebt), "liquidation: transfer failed");
    _updateRates(debtAsset, dr);
    emit LiquidationCall(collateralAsset, debtAsset, user, v.actualDebt, v.actualCollateral, msg.sender, receiveAToken);
  }

  // ---------------------------------------------------------------- views

  function getUserAccountData(address user) external view returns (uint256, uint256, uint256, uint256, uint256, uint256) {
    AccountVars memory a = _accountData(user);
    uint256 availableBorrows = a.totalCollateral.percentMul(a.avgLtv);
    availableBorrows = availableBorrows > a.totalDebt ? availableBorrows - a.totalDebt : 0;
    return (a.totalCollateral, a.totalDebt, availableBorrows, a.avgLiquidationThreshold, a.avgLtv, a.healthFactor);
  }

  function getConfiguration(address asset) external view returns (DataTypes.ReserveConfigurationMap memory) {
    return DataTypes.ReserveConfigurationMap(_reserves[asset].configuration);
  }

  function getUserConfiguration(address user) external view returns (DataTypes.UserConfigurationMap memory) {
    return DataTypes.UserConfigurationMap(_usersConfig[user]);
  }

  function getReserveNormalizedIncome(address asset) public view returns (uint256) {
    Reserve storage r = _reserves[asset];
    if (r.lastUpdateTimestamp == uint40(block.timestamp)) return r.liquidityIndex;
    return MathLib.linearInterest(r.currentLiquidityRate, r.lastUpdateTimestamp).rayMul(r.liquidityIndex);
  }

  function getReserveNormalizedVariableDebt(address asset) public view returns (uint256) {
    Reserve storage r = _reserves[asset];
    if (r.lastUpdateTimestamp == uint40(block.timestamp)) return r.variableBorrowIndex;
    return MathLib.compoundedInterest(r.currentVariableBorrowRate, r.lastUpdateTimestamp).rayMul(r.variableBorrowIndex);
  }

  function getReserveData(address asset) external view returns (DataTypes.ReserveDataLegacy memory d) {
    Reserve storage r = _reserves[asset];
    d.configuration = DataTypes.ReserveConfigurationMap(r.configuration);
    d.liquidityIndex = r.liquidityIndex;
    d.currentLiquidityRate = r.currentLiquidityRate;
    d.variableBorrowIndex = r.variableBorrowIndex;
    d.currentVariableBorrowRate = r.currentVariableBorrowRate;
    d.lastUpdateTimestamp = r.lastUpdateTimestamp;
    d.id = r.id;
    d.aTokenAddress = r.aTokenAddress;
    d.variableDebtTokenAddress = r.variableDebtTokenAddress;
  }

  function getReserveDeficit(address asset) external view returns (uint256) {
    return _reserves[asset].deficit;
  }

  function getReservesList() external view returns (address[] memory) {
    return _reservesList;
  }

  function getUserEMode(address) external pure returns (uint256) {
    return 0;
  }

  /// The revision of the Aave version whose rules this Pool follows (v3.3).
  uint256 public constant POOL_REVISION = 7;

  /// This Pool has no e-mode categories, no liquidation grace period.
  function getEModeCategoryData(uint8) external pure returns (DataTypes.EModeCategoryLegacy memory c) {
    return c;
  }

  function getEModeCategoryCollateralBitmap(uint8) external pure returns (uint128) {
    return 0;
  }

  function getLiquidationGracePeriod(address) external pure returns (uint40) {
    return 0;
  }

  // ---------------------------------------------------------------- internals

  /// GenericLogic.calculateUserAccountData (no e-mode).
  function _accountData(address user) internal view returns (AccountVars memory a) {
    uint256 userConfig = _usersConfig[user];
    if (userConfig == 0) {
      a.healthFactor = type(uint256).max;
      return a;
    }
    for (uint256 i = 0; i < _reservesList.length; i++) {
      bool borrowing = (userConfig >> (2 * i)) & 1 == 1;
      bool collateral = (userConfig >> (2 * i + 1)) & 1 == 1;
      if (borrowing || collateral) _accumulate(a, user, _reservesList[i], borrowing, collateral);
    }
    a.avgLtv = a.totalCollateral != 0 ? a.avgLtv / a.totalCollateral : 0;
    a.avgLiquidationThreshold = a.totalCollateral != 0 ? a.avgLiquidationThreshold / a.totalCollateral : 0;
    a.healthFactor = a.totalDebt == 0
      ? type(uint256).max
      : a.totalCollateral.percentMul(a.avgLiquidationThreshold).wadDiv(a.totalDebt);
  }

  function _accumulate(AccountVars memory a, address user, address asset, bool borrowing, bool collateral) internal view {
    Reserve storage r = _reserves[asset];
    uint256 price = ORACLE.getAssetPrice(asset);
    uint256 unit = 10 ** _decimals(r.configuration);
    uint256 lt = _liquidationThreshold(r.configuration);
    if (collateral && lt != 0) {
      uint256 balance = (AToken(r.aTokenAddress).scaledBalanceOf(user).rayMul(getReserveNormalizedIncome(asset)) * price) / unit;
      a.totalCollateral += balance;
      uint256 ltv = _ltv(r.configuration);
      if (ltv != 0) a.avgLtv += balance * ltv;
      else a.hasZeroLtvCollateral = true;
      a.avgLiquidationThreshold += balance * lt;
    }
    if (borrowing) {
      uint256 debt = VariableDebtToken(r.variableDebtTokenAddress).scaledBalanceOf(user);
      if (debt != 0) debt = debt.rayMul(getReserveNormalizedVariableDebt(asset));
      a.totalDebt += (price * debt) / unit;
    }
  }

  /// LiquidationLogic._calculateAvailableCollateralToLiquidate.
  function _calculateCollateral(LiquidationVars memory v, uint256 collateralConfiguration) internal pure {
    uint256 baseCollateral = (v.debtPrice * v.actualDebt * v.collateralUnit) / (v.collateralPrice * v.debtUnit);
    uint256 maxCollateral = baseCollateral.percentMul(v.liquidationBonus);
    if (maxCollateral > v.userCollateralBalance) {
      v.actualCollateral = v.userCollateralBalance;
      v.actualDebt = ((v.collateralPrice * v.actualCollateral * v.debtUnit) / (v.debtPrice * v.collateralUnit)).percentDiv(
        v.liquidationBonus
      );
    } else {
      v.actualCollateral = maxCollateral;
    }
    v.collateralInBase = (v.actualCollateral * v.collateralPrice) / v.collateralUnit;
    uint256 protocolFeePercentage = (collateralConfiguration >> 152) & 0xFFFF;
    if (protocolFeePercentage != 0) {
      uint256 bonusCollateral = v.actualCollateral - v.actualCollateral.percentDiv(v.liquidationBonus);
      v.protocolFee = bonusCollateral.percentMul(protocolFeePercentage);
      v.actualCollateral -= v.protocolFee;
    }
  }

  function _burnDebt(Reserve storage r, address asset, address user, uint256 userDebt, uint256 actualDebt, bool burnAll) internal {
    if (userDebt != 0) {
      VariableDebtToken(r.variableDebtTokenAddress).burn(user, burnAll ? userDebt : actualDebt, r.variableBorrowIndex);
    }
    uint256 outstanding = userDebt - actualDebt;
    if (burnAll && outstanding != 0) {
      r.deficit += uint128(outstanding);
      emit DeficitCreated(user, asset, outstanding);
      outstanding = 0;
    }
    if (outstanding == 0) _setBorrowing(user, r.id, false);
  }

  function _burnBadDebt(address user) internal {
    for (uint256 i = 0; i < _reservesList.length; i++) {
      if ((_usersConfig[user] >> (2 * i)) & 1 == 0) continue;
      address asset = _reservesList[i];
      Reserve storage r = _reserves[asset];
      _updateState(r);
      _burnDebt(r, asset, user, VariableDebtToken(r.variableDebtTokenAddress).balanceOf(user), 0, true);
      _updateRates(asset, r);
    }
  }

  function _updateState(Reserve storage r) internal {
    if (r.lastUpdateTimestamp == uint40(block.timestamp)) return;
    if (r.currentLiquidityRate != 0) {
      r.liquidityIndex = uint128(MathLib.linearInterest(r.currentLiquidityRate, r.lastUpdateTimestamp).rayMul(r.liquidityIndex));
    }
    if (VariableDebtToken(r.variableDebtTokenAddress).scaledTotalSupply() != 0) {
      r.variableBorrowIndex = uint128(
        MathLib.compoundedInterest(r.currentVariableBorrowRate, r.lastUpdateTimestamp).rayMul(r.variableBorrowIndex)
      );
    }
    r.lastUpdateTimestamp = uint40(block.timestamp);
  }

  /// Liquidity rate = variable borrow rate x utilization x (1 - reserve factor).
  function _updateRates(address asset, Reserve storage r) internal {
    uint256 debt = VariableDebtToken(r.variableDebtTokenAddress).scaledTotalSupply().rayMul(r.variableBorrowIndex);
    uint256 liquidity = IERC20(asset).balanceOf(r.aTokenAddress);
    uint256 utilization = debt == 0 ? 0 : debt.rayDiv(debt + liquidity);
    uint256 reserveFactor = (r.configuration >> 64) & 0xFFFF;
    r.currentLiquidityRate = uint128(
      uint256(r.currentVariableBorrowRate).rayMul(utilization).percentMul(MathLib.PERCENTAGE_FACTOR - reserveFactor)
    );
    emit ReserveDataUpdated(asset, r.currentLiquidityRate, 0, r.currentVariableBorrowRate, r.liquidityIndex, r.variableBorrowIndex);
  }

  function _validateHealthFactorAndLtv(address user, uint256 reserveConfiguration) internal view {
    AccountVars memory a = _accountData(user);
    require(a.healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "35");
    require(!a.hasZeroLtvCollateral || _ltv(reserveConfiguration) == 0, "57"); // LTV_VALIDATION_FAILED
  }

  function _validateActive(uint256 configuration, bool checkFrozen) internal pure {
    require((configuration >> 56) & 1 == 1, "27"); // RESERVE_INACTIVE
    require((configuration >> 60) & 1 == 0, "29"); // RESERVE_PAUSED
    if (checkFrozen) require((configuration >> 57) & 1 == 0, "28"); // RESERVE_FROZEN
  }

  function _ltv(uint256 c) internal pure returns (uint256) {
    return c & 0xFFFF;
  }

  function _liquidationThreshold(uint256 c) internal pure returns (uint256) {
    return (c >> 16) & 0xFFFF;
  }

  function _decimals(uint256 c) internal pure returns (uint256) {
    return (c >> 48) & 0xFF;
  }

  function _isUsingAsCollateral(address user, uint16 id) internal view returns (bool) {
    return (_usersConfig[user] >> (2 * uint256(id) + 1)) & 1 == 1;
  }

  function _isBorrowingAny(address user) internal view returns (bool) {
    return _usersConfig[user] & 0x5555555555555555555555555555555555555555555555555555555555555555 != 0;
  }

  function _setUsingAsCollateral(address user, uint16 id, bool on) internal {
    uint256 bit = 1 << (2 * uint256(id) + 1);
    _usersConfig[user] = on ? _usersConfig[user] | bit : _usersConfig[user] & ~bit;
  }

  function _setBorrowing(address user, uint16 id, bool on) internal {
    uint256 bit = 1 << (2 * uint256(id));
    _usersConfig[user] = on ? _usersConfig[user] | bit : _usersConfig[user] & ~bit;
  }
}

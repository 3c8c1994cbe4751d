// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {FlashBase} from "./FlashBase.sol";
import {AssetInfo} from "./interfaces/IComet.sol";

interface IAavePoolDeleverage {
  function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256);
  function withdraw(address asset, uint256 amount, address to) external returns (uint256);
  function getUserAccountData(address user)
    external
    view
    returns (uint256, uint256, uint256, uint256, uint256, uint256 healthFactor);
}

interface ICometDeleverage {
  function supplyTo(address dst, address asset, uint256 amount) external;
  function withdrawFrom(address src, address to, address asset, uint256 amount) external;
  function borrowBalanceOf(address account) external view returns (uint256);
  function collateralBalanceOf(address account, address asset) external view returns (uint128);
  function numAssets() external view returns (uint8);
  function getAssetInfo(uint8 i) external view returns (AssetInfo memory);
  function getPrice(address priceFeed) external view returns (uint256);
  function baseTokenPriceFeed() external view returns (address);
  function baseScale() external view returns (uint256);
}

/// keeper's deleverager: brings a protected Aave position back to its target health factor with
/// the position's own collateral, in one transaction, without cash in the keeper's wallet.
///
/// The owner (the keeper's key) asks for a flash loan of the debt asset; inside it the contract
/// repays `repay` of the user's variable debt, takes `withdraw` of the user's collateral as
/// aTokens (`transferFrom`: the user approved this contract on the aToken), withdraws it, sells
/// all of it on Uniswap v3 along the keeper's path (min out), and repays the loan and its fee.
/// What the sale brings beyond that goes to the user. It reverts unless the user's health factor
/// afterwards, read from the Pool, is within [minHealthFactor, maxHealthFactor]: the keeper
/// cannot take more collateral than the target needs, nor leave the position short of it. It
/// holds nothing between calls; the loan, callbacks and sales are FlashBase's.
///
/// Compound v3 the same way: the base asset borrowed and supplied to the user (`supplyTo`
/// repays the borrow), the collateral taken with `withdrawFrom` (the user `allow`ed this contract
/// as manager), and the health factor computed from Comet's own views as the keeper computes it:
/// the collateral at the liquidation collateral factors over the borrow, both at Comet's prices.
contract Deleverager is FlashBase {
  struct AaveDeleverage {
    address pool;
    address user;
    address collateral;
    address aToken;
    uint256 repay;
    uint256 withdraw;
    Sale sale;
    uint256 minHealthFactor;
    uint256 maxHealthFactor;
  }

  event Deleveraged(
    address indexed market,
    address indexed user,
    address indexed debtAsset,
    uint256 repaid,
    uint256 collateralSold,
    uint256 fee,
    uint256 returned,
    uint256 healthFactor
  );

  struct CometDeleverage {
    address comet;
    address user;
    address collateral;
    uint256 repay;
    uint256 withdraw;
    Sale sale;
    uint256 minHealthFactor;
    uint256 maxHealthFactor;
  }

  error HealthOutOfRange(uint256 healthFactor, uint256 minHealthFactor, uint256 maxHealthFactor);
  error SaleTooSmall(uint256 balance, uint256 owed);

  uint256 private _repaid;

  constructor(address swapRouter) FlashBase(swapRouter) {}

  function deleverageAave(Flash calldata loan, AaveDeleverage calldata d) external guarded returns (uint256 healthFactor) {
    _checkPath(d.sale.path, d.collateral, loan.asset);
    uint256 fee = _flash(loan, abi.encode(false, abi.encode(d)));
    (,,,,, healthFactor) = IAavePoolDeleverage(d.pool).getUserAccountData(d.user);
    _finish(loan.asset, d.pool, d.user, d.withdraw, fee, healthFactor, d.minHealthFactor, d.maxHealthFactor);
  }

  function deleverageComet(Flash calldata loan, CometDeleverage calldata d) external guarded returns (uint256 healthFactor) {
    _checkPath(d.sale.path, d.collateral, loan.asset);
    uint256 fee = _flash(loan, abi.encode(true, abi.encode(d)));
    healthFactor = cometHealthFactor(d.comet, d.user);
    _finish(loan.asset, d.comet, d.user, d.withdraw, fee, healthFactor, d.minHealthFactor, d.maxHealthFactor);
  }

  /// Liquidation collateral value over debt value, WAD (max without debt), from Comet's views.
  function cometHealthFactor(address comet, address user) public view returns (uint256) {
    ICometDeleverage c = ICometDeleverage(comet);
    uint256 debt = c.borrowBalanceOf(user) * c.getPrice(c.baseTokenPriceFeed()) / c.baseScale();
    if (debt == 0) return type(uint256).max;
    uint256 collateral;
    uint8 n = c.numAssets();
    for (uint8 i = 0; i < n; i++) {
      AssetInfo memory a = c.getAssetInfo(i);
      uint256 balance = c.collateralBalanceOf(user, a.asset);
      if (balance == 0) continue;
      uint256 value = balance * c.getPrice(a.priceFeed) / a.scale;
      collateral += value * a.liquidateCollateralFactor / 1e18;
    }
    return collateral * 1e18 / debt;
  }

  /// The rest to the user, the health factor range, the event.
  function _finish(
    address asset,
    address market,
    address user,
    uint256 withdrawn,
    uint256 fee,
    uint256 healthFactor,
    uint256 minHealthFactor,
    uint256 maxHealthFactor
  ) internal {
    uint256 repaid = _repaid;
    _repaid = 0;
    uint256 rest = IERC20(asset).balanceOf(address(this));
    if (rest > 0) _transfer(asset, user, rest);
    if (healthFactor < minHealthFactor || healthFactor > maxHealthFactor) {
      revert HealthOutOfRange(healthFactor, minHealthFactor, maxHealthFactor);
    }
    emit Deleveraged(market, user, asset, repaid, withdrawn, fee, rest, healthFactor);
  }

  /// Inside the loan: repay, take and withdraw the collateral, sell it, and cover `owed`.
  function _work(bytes calldata data, address asset, uint256 owed) internal override {
    (bool comet, bytes memory inner) = abi.decode(data, (bool, bytes));
    address collateral;
    Sale memory sale;
    if (comet) {
      CometDeleverage memory d = abi.decode(inner, (CometDeleverage));
      _approve(asset, d.comet, d.repay);
      ICometDeleverage(d.comet).supplyTo(d.user, asset, d.repay);
      _approve(asset, d.comet, 0);
      _repaid = d.repay;
      ICometDeleverage(d.comet).withdrawFrom(d.user, address(this), d.collateral, d.withdraw);
      (collateral, sale) = (d.collateral, d.sale);
    } else {
      AaveDeleverage memory d = abi.decode(inner, (AaveDeleverage));
      _approve(asset, d.pool, d.repay);
      _repaid = IAavePoolDeleverage(d.pool).repay(asset, d.repay, 2, d.user);
      _approve(asset, d.pool, 0);
      _call(d.aToken, abi.encodeCall(IERC20.transferFrom, (d.user, address(this), d.withdraw)));
      IAavePoolDeleverage(d.pool).withdraw(d.collateral, type(uint256).max, address(this));
      (collateral, sale) = (d.collateral, d.sale);
    }
    if (collateral != asset) _sell(collateral, sale);
    uint256 balance = IERC20(asset).balanceOf(address(this));
    if (balance < owed) revert SaleTooSmall(balance, owed);
  }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {FlashBase} from "./FlashBase.sol";

interface IAavePoolDeleverage {
  function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256);
  function withdraw(address asset, uint256 amount, address to) external returns (uint256);
  function getUserAccountData(address user)
    external
    view
    returns (uint256, uint256, uint256, uint256, uint256, uint256 healthFactor);
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

  error HealthOutOfRange(uint256 healthFactor, uint256 minHealthFactor, uint256 maxHealthFactor);
  error SaleTooSmall(uint256 balance, uint256 owed);

  uint256 private _repaid;

  constructor(address swapRouter) FlashBase(swapRouter) {}

  function deleverageAave(Flash calldata loan, AaveDeleverage calldata d) external guarded returns (uint256 healthFactor) {
    _checkPath(d.sale.path, d.collateral, loan.asset);
    uint256 fee = _flash(loan, abi.encode(d));
    uint256 repaid = _repaid;
    _repaid = 0;
    uint256 rest = IERC20(loan.asset).balanceOf(address(this));
    if (rest > 0) _transfer(loan.asset, d.user, rest);
    (,,,,, healthFactor) = IAavePoolDeleverage(d.pool).getUserAccountData(d.user);
    if (healthFactor < d.minHealthFactor || healthFactor > d.maxHealthFactor) {
      revert HealthOutOfRange(healthFactor, d.minHealthFactor, d.maxHealthFactor);
    }
    emit Deleveraged(d.pool, d.user, loan.asset, repaid, d.withdraw, fee, rest, healthFactor);
  }

  /// Inside the loan: repay, take and withdraw the collateral, sell it, and cover `owed`.
  function _work(bytes calldata data, address asset, uint256 owed) internal override {
    AaveDeleverage memory d = abi.decode(data, (AaveDeleverage));
    _approve(asset, d.pool, d.repay);
    _repaid = IAavePoolDeleverage(d.pool).repay(asset, d.repay, 2, d.user);
    _approve(asset, d.pool, 0);
    _call(d.aToken, abi.encodeCall(IERC20.transferFrom, (d.user, address(this), d.withdraw)));
    IAavePoolDeleverage(d.pool).withdraw(d.collateral, type(uint256).max, address(this));
    if (d.collateral != asset) _sell(d.collateral, d.sale);
    uint256 balance = IERC20(asset).balanceOf(address(this));
    if (balance < owed) revert SaleTooSmall(balance, owed);
  }
}

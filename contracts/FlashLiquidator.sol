// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {FlashBase} from "./FlashBase.sol";

interface IAavePoolLiquidation {
  function liquidationCall(address collateralAsset, address debtAsset, address user, uint256 debtToCover, bool receiveAToken) external;
}

interface ICometLiquidation {
  function absorb(address absorber, address[] calldata accounts) external;
  function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external;
}

/// keeper's liquidator: liquidates without inventory, in one transaction.
///
/// The owner (the keeper's key) asks for a flash loan of the debt asset (a Uniswap v3 pool's
/// `flash`, or an Aave v3 Pool's `flashLoanSimple`); in the lender's callback the contract
/// liquidates (Aave `liquidationCall`, or Comet `absorb` then `buyCollateral`), sells every unit of
/// collateral it received on Uniswap v3 (SwapRouter `exactInput` along the keeper's path, with the
/// keeper's minimum out), and repays the loan and its fee. It reverts unless what is left is at
/// least `minProfit` (debt-asset units), and sends all of it to the owner: no token stays here.
///
/// The loan, its callbacks and the sales are FlashBase's: callbacks are accepted only from the
/// lender this contract called, during that call, for a loan this contract initiated; every
/// entry point is guarded against reentrancy.
contract FlashLiquidator is FlashBase {
  struct AaveLiquidation {
    address pool;
    address collateral;
    address user;
    uint256 debtToCover;
    Sale sale;
  }

  /// Absorb `accounts`, then for each `assets[i]` buy with `baseAmounts[i]` of the base asset
  /// (the loan's asset) and sell it along `sales[i]`.
  struct CometLiquidation {
    address comet;
    address[] accounts;
    address[] assets;
    uint256[] baseAmounts;
    Sale[] sales;
  }

  event FlashLiquidation(address indexed market, address indexed asset, uint256 borrowed, uint256 fee, uint256 profit);

  error LengthMismatch();
  error ProfitTooLow(uint256 left, uint256 minProfit);

  uint256 private _minProfit;
  /// What the current loan leaves once repaid (the profit), set in the callback.
  uint256 private _left;

  constructor(address swapRouter) FlashBase(swapRouter) {}

  // ---------------------------------------------------------------- entry points (owner only)

  function liquidateAave(Flash calldata loan, AaveLiquidation calldata l, uint256 minProfit) external guarded returns (uint256) {
    _checkPath(l.sale.path, l.collateral, loan.asset);
    return _borrow(loan, l.pool, abi.encode(false, abi.encode(l)), minProfit);
  }

  function liquidateComet(Flash calldata loan, CometLiquidation calldata c, uint256 minProfit) external guarded returns (uint256) {
    if (c.assets.length != c.baseAmounts.length || c.assets.length != c.sales.length) revert LengthMismatch();
    for (uint256 i = 0; i < c.assets.length; i++) _checkPath(c.sales[i].path, c.assets[i], loan.asset);
    return _borrow(loan, c.comet, abi.encode(true, abi.encode(c)), minProfit);
  }

  // ---------------------------------------------------------------- internals

  function _borrow(Flash calldata loan, address market, bytes memory work, uint256 minProfit) internal returns (uint256 profit) {
    _minProfit = minProfit;
    uint256 fee = _flash(loan, work);
    profit = _left;
    _left = 0;
    _minProfit = 0;
    if (profit > 0) _transfer(loan.asset, owner, profit);
    emit FlashLiquidation(market, loan.asset, loan.amount, fee, profit);
  }

  /// Inside the loan: liquidate, sell, and check that `owed` is covered with `minProfit` to spare.
  function _work(bytes calldata data, address asset, uint256 owed) internal override {
    (bool comet, bytes memory inner) = abi.decode(data, (bool, bytes));
    if (comet) {
      CometLiquidation memory c = abi.decode(inner, (CometLiquidation));
      ICometLiquidation(c.comet).absorb(address(this), c.accounts);
      for (uint256 i = 0; i < c.assets.length; i++) {
        _approve(asset, c.comet, c.baseAmounts[i]);
        ICometLiquidation(c.comet).buyCollateral(c.assets[i], 0, c.baseAmounts[i], address(this));
        _approve(asset, c.comet, 0);
        _sell(c.assets[i], c.sales[i]);
      }
    } else {
      AaveLiquidation memory l = abi.decode(inner, (AaveLiquidation));
      _approve(asset, l.pool, IERC20(asset).balanceOf(address(this)));
      IAavePoolLiquidation(l.pool).liquidationCall(l.collateral, asset, l.user, l.debtToCover, false);
      _approve(asset, l.pool, 0);
      if (l.collateral != asset) _sell(l.collateral, l.sale);
    }
    uint256 balance = IERC20(asset).balanceOf(address(this));
    uint256 left = balance > owed ? balance - owed : 0;
    if (balance < owed || left < _minProfit) revert ProfitTooLow(left, _minProfit);
    _left = left;
  }
}

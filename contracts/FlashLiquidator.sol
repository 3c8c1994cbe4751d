// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";

interface IAavePoolLiquidation {
  function liquidationCall(address collateralAsset, address debtAsset, address user, uint256 debtToCover, bool receiveAToken) external;
  function flashLoanSimple(address receiverAddress, address asset, uint256 amount, bytes calldata params, uint16 referralCode) external;
}

interface ICometLiquidation {
  function absorb(address absorber, address[] calldata accounts) external;
  function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external;
}

interface IUniswapV3FlashPool {
  function token0() external view returns (address);
  function token1() external view returns (address);
  function flash(address recipient, uint256 amount0, uint256 amount1, bytes calldata data) external;
}

interface ISwapRouterExactInput {
  struct ExactInputParams {
    bytes path;
    address recipient;
    uint256 deadline;
    uint256 amountIn;
    uint256 amountOutMinimum;
  }

  function exactInput(ExactInputParams calldata params) external payable returns (uint256 amountOut);
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
/// Callbacks are accepted only from the lender this contract called, during that call, for a
/// loan this contract initiated; every entry point is guarded against reentrancy.
contract FlashLiquidator {
  enum Source {
    UniswapV3,
    AaveV3
  }

  /// The loan: `lender` is the Uniswap v3 pool (one of whose tokens is `asset`) or the Aave Pool.
  struct Flash {
    Source source;
    address lender;
    address asset;
    uint256 amount;
  }

  /// A sale on Uniswap v3: `path` (tokenIn, fee, tokenOut, ...) from a seized collateral to the
  /// debt asset; every unit received is sold. An empty path sells nothing (collateral = debt).
  struct Sale {
    bytes path;
    uint256 minOut;
  }

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

  error NotOwner();
  error Reentrancy();
  error UnexpectedCallback(address caller);
  error NotInitiator(address initiator);
  error LenderLacksAsset(address lender, address asset);
  error BadPath(address expectedIn, address expectedOut);
  error LengthMismatch();
  error NoCallback(address lender);
  error ProfitTooLow(uint256 left, uint256 minProfit);
  error TransferFailed(address token);

  address public immutable owner;
  /// The Uniswap v3 SwapRouter the sales go through.
  address public immutable router;
  uint256 private _entered = 1;
  /// The lender called, set for the duration of the loan (zero otherwise).
  address private _lender;
  uint256 private _minProfit;
  /// What the current loan leaves once repaid (the profit), set in the callback.
  uint256 private _left;
  uint256 private _fee;
  bool private _called;

  constructor(address swapRouter) {
    owner = msg.sender;
    router = swapRouter;
  }

  modifier guarded() {
    if (_entered != 1) revert Reentrancy();
    _entered = 2;
    if (msg.sender != owner) revert NotOwner();
    _;
    _entered = 1;
  }

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

  /// Tokens sent here by anyone else go to the owner.
  function sweep(address token) external guarded {
    uint256 balance = IERC20(token).balanceOf(address(this));
    if (balance > 0) _transfer(token, owner, balance);
  }

  // ---------------------------------------------------------------- lender callbacks

  function uniswapV3FlashCallback(uint256 fee0, uint256 fee1, bytes calldata data) external {
    _enterCallback();
    (address asset, uint256 amount) = abi.decode(data[:64], (address, uint256));
    uint256 fee = IUniswapV3FlashPool(msg.sender).token0() == asset ? fee0 : fee1;
    _work(data[64:], asset, amount + fee);
    _fee = fee;
    _transfer(asset, msg.sender, amount + fee);
  }

  function executeOperation(address asset, uint256 amount, uint256 premium, address initiator, bytes calldata params)
    external
    returns (bool)
  {
    _enterCallback();
    if (initiator != address(this)) revert NotInitiator(initiator);
    _work(params, asset, amount + premium);
    _fee = premium;
    _approve(asset, msg.sender, amount + premium); // the Pool pulls it back when this returns
    return true;
  }

  // ---------------------------------------------------------------- internals

  /// Only the lender called, once, while its loan is under way.
  function _enterCallback() internal {
    if (msg.sender != _lender || msg.sender == address(0)) revert UnexpectedCallback(msg.sender);
    _lender = address(0);
    _called = true;
  }

  function _borrow(Flash calldata loan, address market, bytes memory work, uint256 minProfit) internal returns (uint256 profit) {
    _lender = loan.lender;
    _minProfit = minProfit;
    if (loan.source == Source.UniswapV3) {
      IUniswapV3FlashPool pool = IUniswapV3FlashPool(loan.lender);
      bool first = pool.token0() == loan.asset;
      if (!first && pool.token1() != loan.asset) revert LenderLacksAsset(loan.lender, loan.asset);
      pool.flash(address(this), first ? loan.amount : 0, first ? 0 : loan.amount, abi.encodePacked(abi.encode(loan.asset, loan.amount), work));
    } else {
      IAavePoolLiquidation(loan.lender).flashLoanSimple(address(this), loan.asset, loan.amount, work, 0);
      _approve(loan.asset, loan.lender, 0);
    }
    if (!_called) revert NoCallback(loan.lender);
    _called = false;
    _lender = address(0);
    profit = _left;
    uint256 fee = _fee;
    _left = 0;
    _fee = 0;
    _minProfit = 0;
    if (profit > 0) _transfer(loan.asset, owner, profit);
    emit FlashLiquidation(market, loan.asset, loan.amount, fee, profit);
  }

  /// Inside the loan: liquidate, sell, and check that `owed` is covered with `minProfit` to spare.
  function _work(bytes calldata data, address asset, uint256 owed) internal {
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

  function _sell(address token, Sale memory sale) internal {
    uint256 amount = IERC20(token).balanceOf(address(this));
    if (amount == 0) return;
    _approve(token, router, amount);
    ISwapRouterExactInput(router).exactInput(
      ISwapRouterExactInput.ExactInputParams(sale.path, address(this), block.timestamp, amount, sale.minOut)
    );
    _approve(token, router, 0);
  }

  /// The path must start at the collateral and end at the debt asset (20-byte address, then
  /// 3-byte fee and 20-byte address per hop). An empty path: the collateral is the debt asset.
  function _checkPath(bytes calldata path, address tokenIn, address tokenOut) internal pure {
    if (path.length == 0) {
      if (tokenIn != tokenOut) revert BadPath(tokenIn, tokenOut);
      return;
    }
    if (path.length < 43 || (path.length - 20) % 23 != 0) revert BadPath(tokenIn, tokenOut);
    if (address(bytes20(path[:20])) != tokenIn || address(bytes20(path[path.length - 20:])) != tokenOut) {
      revert BadPath(tokenIn, tokenOut);
    }
  }

  /// ERC20 calls that accept tokens returning nothing (USDT) and refuse those returning false.
  function _call(address token, bytes memory data) internal {
    (bool ok, bytes memory ret) = token.call(data);
    if (!ok || (ret.length > 0 && !abi.decode(ret, (bool))) || token.code.length == 0) revert TransferFailed(token);
  }

  function _transfer(address token, address to, uint256 amount) internal {
    _call(token, abi.encodeCall(IERC20.transfer, (to, amount)));
  }

  /// Approvals go through zero (tokens that refuse to change a non-zero allowance).
  function _approve(address token, address spender, uint256 amount) internal {
    if (IERC20(token).allowance(address(this), spender) != 0) _call(token, abi.encodeCall(IERC20.approve, (spender, 0)));
    if (amount != 0) _call(token, abi.encodeCall(IERC20.approve, (spender, amount)));
  }
}

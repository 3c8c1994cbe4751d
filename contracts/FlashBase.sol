// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";

interface IAaveFlashLender {
  function flashLoanSimple(address receiverAddress, address asset, uint256 amount, bytes calldata params, uint16 referralCode) external;
}

interface IMorphoFlashLender {
  function flashLoan(address token, uint256 assets, bytes calldata data) external;
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

/// The flash machinery keeper's contracts share (FlashLiquidator, Deleverager): an owner-only,
/// reentrancy-guarded entry, a flash loan from a Uniswap v3 pool (`flash`), an Aave v3 Pool
/// (`flashLoanSimple`) or Morpho Blue (`flashLoan`, free) whose callback is accepted only from the
/// lender called, once, for a loan this contract initiated; sales on Uniswap v3 (SwapRouter `exactInput`) along a checked path;
/// ERC20 calls that accept tokens returning nothing. A contract built on it implements `_work`,
/// what happens inside the loan; it must leave `owed` (the loan plus its fee) in the asset.
abstract contract FlashBase {
  enum Source {
    UniswapV3,
    AaveV3,
    MorphoBlue
  }

  /// The loan: `lender` is the Uniswap v3 pool (one of whose tokens is `asset`), the Aave Pool or
  /// the Morpho contract.
  struct Flash {
    Source source;
    address lender;
    address asset;
    uint256 amount;
  }

  /// A sale on Uniswap v3: `path` (tokenIn, fee, tokenOut, ...) from a collateral to the debt
  /// asset; every unit held is sold. An empty path sells nothing (collateral = debt).
  struct Sale {
    bytes path;
    uint256 minOut;
  }

  error NotOwner();
  error Reentrancy();
  error UnexpectedCallback(address caller);
  error NotInitiator(address initiator);
  error LenderLacksAsset(address lender, address asset);
  error BadPath(address expectedIn, address expectedOut);
  error NoCallback(address lender);
  error TransferFailed(address token);

  address public immutable owner;
  /// The Uniswap v3 SwapRouter the sales go through.
  address public immutable router;
  uint256 private _entered = 1;
  /// The lender called, set for the duration of the loan (zero otherwise).
  address private _lender;
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

  /// Morpho Blue's flash loan: no fee; Morpho pulls the loan back when this returns.
  function onMorphoFlashLoan(uint256 assets, bytes calldata data) external {
    _enterCallback();
    address asset = abi.decode(data[:32], (address));
    _work(data[32:], asset, assets);
    _fee = 0;
    _approve(asset, msg.sender, assets);
  }

  // ---------------------------------------------------------------- internals

  /// Inside the loan of `asset`: must leave at least `owed` of it here.
  function _work(bytes calldata data, address asset, uint256 owed) internal virtual;

  /// Only the lender called, once, while its loan is under way.
  function _enterCallback() internal {
    if (msg.sender != _lender || msg.sender == address(0)) revert UnexpectedCallback(msg.sender);
    _lender = address(0);
    _called = true;
  }

  /// Take the loan and run `work` inside it; returns the fee paid.
  function _flash(Flash calldata loan, bytes memory work) internal returns (uint256 fee) {
    _lender = loan.lender;
    if (loan.source == Source.UniswapV3) {
      IUniswapV3FlashPool pool = IUniswapV3FlashPool(loan.lender);
      bool first = pool.token0() == loan.asset;
      if (!first && pool.token1() != loan.asset) revert LenderLacksAsset(loan.lender, loan.asset);
      pool.flash(address(this), first ? loan.amount : 0, first ? 0 : loan.amount, abi.encodePacked(abi.encode(loan.asset, loan.amount), work));
    } else if (loan.source == Source.AaveV3) {
      IAaveFlashLender(loan.lender).flashLoanSimple(address(this), loan.asset, loan.amount, work, 0);
      _approve(loan.asset, loan.lender, 0);
    } else {
      IMorphoFlashLender(loan.lender).flashLoan(loan.asset, loan.amount, abi.encodePacked(abi.encode(loan.asset), work));
      _approve(loan.asset, loan.lender, 0);
    }
    if (!_called) revert NoCallback(loan.lender);
    _called = false;
    _lender = address(0);
    fee = _fee;
    _fee = 0;
  }

  /// Sell every unit of `token` held along `sale`.
  function _sell(address token, Sale memory sale) internal {
    uint256 amount = IERC20(token).balanceOf(address(this));
    if (amount == 0) return;
    _approve(token, router, amount);
    ISwapRouterExactInput(router).exactInput(
      ISwapRouterExactInput.ExactInputParams(sale.path, address(this), block.timestamp, amount, sale.minOut)
    );
    _approve(token, router, 0);
  }

  /// The path must start at `tokenIn` and end at `tokenOut` (20-byte address, then 3-byte fee and
  /// 20-byte address per hop). An empty path: the two are the same token.
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

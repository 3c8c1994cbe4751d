// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {IPool} from "./interfaces/IPool.sol";
import {IScaledBalanceToken} from "./interfaces/IScaledBalanceToken.sol";
import {MathLib} from "./MathLib.sol";

/// Scaled balances as Aave v3 keeps them (ScaledBalanceTokenBase): balance = scaled x index.
abstract contract ScaledBalanceToken is IScaledBalanceToken {
  using MathLib for uint256;

  address public immutable POOL;
  address public immutable UNDERLYING_ASSET_ADDRESS;
  string public name;
  string public symbol;
  uint8 public immutable decimals;
  mapping(address => uint256) internal _scaled;
  uint256 internal _scaledTotal;

  event Transfer(address indexed from, address indexed to, uint256 value);
  event Mint(address indexed caller, address indexed onBehalfOf, uint256 value, uint256 balanceIncrease, uint256 index);
  event Burn(address indexed from, address indexed target, uint256 value, uint256 balanceIncrease, uint256 index);

  modifier onlyPool() {
    require(msg.sender == POOL, "23"); // CALLER_MUST_BE_POOL
    _;
  }

  constructor(address pool, address underlying, string memory name_, string memory symbol_, uint8 decimals_) {
    POOL = pool;
    UNDERLYING_ASSET_ADDRESS = underlying;
    name = name_;
    symbol = symbol_;
    decimals = decimals_;
  }

  function _index() internal view virtual returns (uint256);

  function scaledBalanceOf(address user) external view returns (uint256) {
    return _scaled[user];
  }

  function scaledTotalSupply() external view returns (uint256) {
    return _scaledTotal;
  }

  function balanceOf(address user) external view returns (uint256) {
    return _scaled[user].rayMul(_index());
  }

  function totalSupply() external view returns (uint256) {
    return _scaledTotal.rayMul(_index());
  }

  function _mintScaled(address caller, address onBehalfOf, uint256 amount, uint256 index) internal returns (bool) {
    uint256 amountScaled = amount.rayDiv(index);
    require(amountScaled != 0, "INVALID_MINT_AMOUNT");
    uint256 previous = _scaled[onBehalfOf];
    _scaled[onBehalfOf] = previous + amountScaled;
    _scaledTotal += amountScaled;
    emit Transfer(address(0), onBehalfOf, amount);
    emit Mint(caller, onBehalfOf, amount, 0, index);
    return previous == 0;
  }

  function _burnScaled(address user, address target, uint256 amount, uint256 index) internal {
    uint256 amountScaled = amount.rayDiv(index);
    require(amountScaled != 0, "INVALID_BURN_AMOUNT");
    uint256 balance = _scaled[user];
    // rayDiv(rayMul(x)) can round one unit above the balance when the whole balance is burnt.
    if (amountScaled == balance + 1) amountScaled = balance;
    _scaled[user] = balance - amountScaled;
    _scaledTotal -= amountScaled;
    emit Transfer(user, address(0), amount);
    emit Burn(user, target, amount, 0, index);
  }
}

/// Aave v3 AToken: holds the reserve's underlying; balances grow with the liquidity index.
contract AToken is ScaledBalanceToken {
  using MathLib for uint256;

  address public immutable RESERVE_TREASURY_ADDRESS;

  constructor(address pool, address underlying, address treasury, string memory name_, string memory symbol_, uint8 decimals_)
    ScaledBalanceToken(pool, underlying, name_, symbol_, decimals_)
  {
    RESERVE_TREASURY_ADDRESS = treasury;
  }

  function _index() internal view override returns (uint256) {
    return IPool(POOL).getReserveNormalizedIncome(UNDERLYING_ASSET_ADDRESS);
  }

  function mint(address caller, address onBehalfOf, uint256 amount, uint256 index) external onlyPool returns (bool) {
    return _mintScaled(caller, onBehalfOf, amount, index);
  }

  /// Burns `amount` of `from`'s aTokens and sends the underlying to `receiverOfUnderlying`.
  function burn(address from, address receiverOfUnderlying, uint256 amount, uint256 index) external onlyPool {
    _burnScaled(from, receiverOfUnderlying, amount, index);
    if (receiverOfUnderlying != address(this)) {
      require(IERC20(UNDERLYING_ASSET_ADDRESS).transfer(receiverOfUnderlying, amount), "aToken: transfer failed");
    }
  }

  /// Moves aTokens on liquidation (to the liquidator or the treasury), at the current index.
  function transferOnLiquidation(address from, address to, uint256 amount) external onlyPool {
    uint256 amountScaled = amount.rayDiv(_index());
    _scaled[from] -= amountScaled;
    _scaled[to] += amountScaled;
    emit Transfer(from, to, amount);
  }

  function transferUnderlyingTo(address target, uint256 amount) external onlyPool {
    require(IERC20(UNDERLYING_ASSET_ADDRESS).transfer(target, amount), "aToken: transfer failed");
  }

  // ---------------------------------------------------------------- ERC20 transfers (Aave's AToken)
  mapping(address => mapping(address => uint256)) internal _allowances;

  event Approval(address indexed owner, address indexed spender, uint256 value);
  event BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index);

  function allowance(address owner, address spender) external view returns (uint256) {
    return _allowances[owner][spender];
  }

  function approve(address spender, uint256 amount) external returns (bool) {
    _allowances[msg.sender][spender] = amount;
    emit Approval(msg.sender, spender, amount);
    return true;
  }

  function transfer(address to, uint256 amount) external returns (bool) {
    _transfer(msg.sender, to, amount);
    return true;
  }

  /// The allowance is in underlying units, as the transfer amount (Aave: IncentivizedERC20).
  function transferFrom(address from, address to, uint256 amount) external returns (bool) {
    uint256 allowed = _allowances[from][msg.sender];
    require(allowed >= amount, "ERC20: transfer amount exceeds allowance");
    _allowances[from][msg.sender] = allowed - amount;
    emit Approval(from, msg.sender, allowed - amount);
    _transfer(from, to, amount);
    return true;
  }

  /// Scaled at the current index; the Pool then checks the sender's health factor and moves the
  /// collateral flags (Pool.finalizeTransfer, as SupplyLogic.executeFinalizeTransfer).
  function _transfer(address from, address to, uint256 amount) internal {
    uint256 index = _index();
    uint256 fromBefore = _scaled[from].rayMul(index);
    uint256 toBefore = _scaled[to].rayMul(index);
    uint256 amountScaled = amount.rayDiv(index);
    _scaled[from] -= amountScaled;
    _scaled[to] += amountScaled;
    IPool(POOL).finalizeTransfer(UNDERLYING_ASSET_ADDRESS, from, to, amount, fromBefore, toBefore);
    emit Transfer(from, to, amount);
    emit BalanceTransfer(from, to, amountScaled, index);
  }
}

/// Aave v3 VariableDebtToken: non-transferable; balances grow with the variable borrow index.
contract VariableDebtToken is ScaledBalanceToken {
  constructor(address pool, address underlying, string memory name_, string memory symbol_, uint8 decimals_)
    ScaledBalanceToken(pool, underlying, name_, symbol_, decimals_)
  {}

  function _index() internal view override returns (uint256) {
    return IPool(POOL).getReserveNormalizedVariableDebt(UNDERLYING_ASSET_ADDRESS);
  }

  function mint(address user, address onBehalfOf, uint256 amount, uint256 index) external onlyPool returns (bool) {
    return _mintScaled(user, onBehalfOf, amount, index);
  }

  function burn(address from, uint256 amount, uint256 index) external onlyPool {
    _burnScaled(from, address(0), amount, index);
  }
}

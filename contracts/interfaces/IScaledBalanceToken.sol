// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The reads keeper makes on Aave v3 aTokens and variable debt tokens (IScaledBalanceToken + underlying).
interface IScaledBalanceToken {
  function scaledBalanceOf(address user) external view returns (uint256);
  function scaledTotalSupply() external view returns (uint256);
  function balanceOf(address user) external view returns (uint256);
  function UNDERLYING_ASSET_ADDRESS() external view returns (address);
  function POOL() external view returns (address);
}

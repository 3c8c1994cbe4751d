// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The views of Aave v3.0-v3.1's StableDebtToken that keeper reads (stable-rate debt was removed in v3.2).
interface IStableDebtToken {
  function balanceOf(address user) external view returns (uint256);
  function principalBalanceOf(address user) external view returns (uint256);
  function getUserStableRate(address user) external view returns (uint256);
  function getUserLastUpdated(address user) external view returns (uint40);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Morpho Blue's oracle interface (src/interfaces/IOracle.sol): the price of one unit of
/// collateral token quoted in loan token units, scaled by 1e36.
interface IMorphoOracle {
  function price() external view returns (uint256);
}

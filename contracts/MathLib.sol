// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Aave v3's WadRayMath and PercentageMath (half-up rounding) and MathUtils interest formulas.
library MathLib {
  uint256 internal constant WAD = 1e18;
  uint256 internal constant HALF_WAD = 0.5e18;
  uint256 internal constant RAY = 1e27;
  uint256 internal constant HALF_RAY = 0.5e27;
  uint256 internal constant PERCENTAGE_FACTOR = 1e4;
  uint256 internal constant HALF_PERCENTAGE_FACTOR = 0.5e4;
  uint256 internal constant SECONDS_PER_YEAR = 365 days;

  function wadMul(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * b + HALF_WAD) / WAD;
  }

  function wadDiv(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * WAD + b / 2) / b;
  }

  function rayMul(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * b + HALF_RAY) / RAY;
  }

  function rayDiv(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * RAY + b / 2) / b;
  }

  function percentMul(uint256 value, uint256 percentage) internal pure returns (uint256) {
    return (value * percentage + HALF_PERCENTAGE_FACTOR) / PERCENTAGE_FACTOR;
  }

  function percentDiv(uint256 value, uint256 percentage) internal pure returns (uint256) {
    return (value * PERCENTAGE_FACTOR + percentage / 2) / percentage;
  }

  /// MathUtils.calculateLinearInterest: RAY + rate * dt / year.
  function linearInterest(uint256 rate, uint40 lastUpdateTimestamp) internal view returns (uint256) {
    return RAY + (rate * (block.timestamp - uint256(lastUpdateTimestamp))) / SECONDS_PER_YEAR;
  }

  /// MathUtils.calculateCompoundedInterest: three-term binomial approximation of (1 + rate/year)^dt.
  function compoundedInterest(uint256 rate, uint40 lastUpdateTimestamp) internal view returns (uint256) {
    uint256 exp = block.timestamp - uint256(lastUpdateTimestamp);
    if (exp == 0) return RAY;
    uint256 expMinusOne = exp - 1;
    uint256 expMinusTwo = exp > 2 ? exp - 2 : 0;
    uint256 basePowerTwo = rayMul(rate, rate) / (SECONDS_PER_YEAR * SECONDS_PER_YEAR);
    uint256 basePowerThree = rayMul(basePowerTwo, rate) / SECONDS_PER_YEAR;
    uint256 secondTerm = (exp * expMinusOne * basePowerTwo) / 2;
    uint256 thirdTerm = (exp * expMinusOne * expMinusTwo * basePowerThree) / 6;
    return RAY + (rate * exp) / SECONDS_PER_YEAR + secondTerm + thirdTerm;
  }
}

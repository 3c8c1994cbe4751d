// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Aave v3 Pool flash loans (every version keeper supports): what the keeper reads and what its
/// liquidator calls. Our compact Pool leaves flash loans out; the deployed Pool has them.
interface IPoolFlashLoan {
  function FLASHLOAN_PREMIUM_TOTAL() external view returns (uint128);
  function flashLoanSimple(address receiverAddress, address asset, uint256 amount, bytes calldata params, uint16 referralCode) external;
}

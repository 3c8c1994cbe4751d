// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {MintableERC20} from "./MintableERC20.sol";

/// USDT's approve rule: changing an allowance that is not zero to another non-zero value reverts
/// (set it to zero first). For the tests of the keeper's approvals.
contract NonZeroApprovalERC20 is MintableERC20 {
  constructor(string memory name_, string memory symbol_, uint8 decimals_) MintableERC20(name_, symbol_, decimals_) {}

  function approve(address spender, uint256 value) external override returns (bool) {
    require(value == 0 || allowance[msg.sender][spender] == 0, "USDT: approve from a non-zero allowance");
    allowance[msg.sender][spender] = value;
    emit Approval(msg.sender, spender, value);
    return true;
  }
}

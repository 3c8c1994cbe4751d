// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IMulticall3} from "./interfaces/IMulticall3.sol";

/// The Multicall3 calls keeper uses, with the deployed Multicall3's semantics.
contract Multicall3 is IMulticall3 {
  function aggregate3(Call3[] calldata calls) public payable returns (Result[] memory returnData) {
    uint256 length = calls.length;
    returnData = new Result[](length);
    for (uint256 i = 0; i < length; i++) {
      Call3 calldata c = calls[i];
      Result memory result = returnData[i];
      (result.success, result.returnData) = c.target.call(c.callData);
      if (!c.allowFailure && !result.success) revert("Multicall3: call failed");
    }
  }

  function getBlockNumber() external view returns (uint256) {
    return block.number;
  }

  function getCurrentBlockTimestamp() external view returns (uint256) {
    return block.timestamp;
  }

  function getBasefee() external view returns (uint256) {
    return block.basefee;
  }

  function getEthBalance(address addr) external view returns (uint256) {
    return addr.balance;
  }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "../interfaces/IERC20.sol";

interface IFlashReceiver {
  function uniswapV3FlashCallback(uint256 fee0, uint256 fee1, bytes calldata data) external;
}

/// Test only: a "Uniswap v3 pool" that lends like one but misbehaves in its callback, to show
/// the liquidator refuses it. Mode 0: calls the callback twice. 1: calls back into the
/// liquidator's entry point (`reentry`, raw calldata). 2: never calls back. 3: lends honestly.
contract HostileLender {
  address public immutable token0;
  address public immutable token1;
  uint8 public mode;
  bytes public reentry;

  constructor(address t0, address t1) {
    token0 = t0;
    token1 = t1;
  }

  function setMode(uint8 m, bytes calldata data) external {
    mode = m;
    reentry = data;
  }

  function flash(address recipient, uint256 amount0, uint256 amount1, bytes calldata data) external {
    if (mode == 2) return;
    if (amount0 > 0) require(IERC20(token0).transfer(recipient, amount0), "lend0");
    if (amount1 > 0) require(IERC20(token1).transfer(recipient, amount1), "lend1");
    if (mode == 1) {
      (bool ok, bytes memory ret) = msg.sender.call(reentry);
      if (!ok) {
        assembly {
          revert(add(ret, 32), mload(ret))
        }
      }
    }
    IFlashReceiver(recipient).uniswapV3FlashCallback(0, 0, data);
    if (mode == 0) IFlashReceiver(recipient).uniswapV3FlashCallback(0, 0, data);
  }
}

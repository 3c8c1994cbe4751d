// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The parts of Uniswap v3 (v3-core 1.0.1, v3-periphery 1.4.4) keeper reads at run time: same
/// signatures as the deployed contracts.
interface IUniswapV3Factory {
  function getPool(address tokenA, address tokenB, uint24 fee) external view returns (address pool);
}

interface IUniswapV3PoolState {
  function token0() external view returns (address);
  function token1() external view returns (address);
  function fee() external view returns (uint24);
  function liquidity() external view returns (uint128);
}

/// QuoterV2: not view (it runs the swap and reverts with the result), called with eth_call.
interface IQuoterV2 {
  function quoteExactInput(bytes memory path, uint256 amountIn)
    external
    returns (uint256 amountOut, uint160[] memory sqrtPriceX96AfterList, uint32[] memory initializedTicksCrossedList, uint256 gasEstimate);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The part of Aave v3's IAaveOracle (IPriceOracleGetter) that keeper uses.
interface IAaveOracle {
  event BaseCurrencySet(address indexed baseCurrency, uint256 baseCurrencyUnit);
  event AssetSourceUpdated(address indexed asset, address indexed source);

  function BASE_CURRENCY() external view returns (address);
  function BASE_CURRENCY_UNIT() external view returns (uint256);
  function getAssetPrice(address asset) external view returns (uint256);
  function getAssetsPrices(address[] calldata assets) external view returns (uint256[] memory);
  function getSourceOfAsset(address asset) external view returns (address);
  function getFallbackOracle() external view returns (address);
}

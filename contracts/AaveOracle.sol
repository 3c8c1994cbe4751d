// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAaveOracle} from "./interfaces/IAaveOracle.sol";
import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";

/// Aave v3's AaveOracle: one Chainlink source per asset, prices in the base currency
/// (USD with 8 decimals on Aave's USD markets), `latestAnswer` read as AaveOracle does.
/// There is no fallback oracle: a missing source or a non-positive answer reverts.
contract AaveOracle is IAaveOracle {
  address public immutable BASE_CURRENCY;
  uint256 public immutable BASE_CURRENCY_UNIT;
  address public immutable owner;
  mapping(address => address) internal _sources;

  constructor(address[] memory assets, address[] memory sources, address baseCurrency, uint256 baseCurrencyUnit) {
    owner = msg.sender;
    BASE_CURRENCY = baseCurrency;
    BASE_CURRENCY_UNIT = baseCurrencyUnit;
    _setAssetsSources(assets, sources);
    emit BaseCurrencySet(baseCurrency, baseCurrencyUnit);
  }

  function setAssetSources(address[] calldata assets, address[] calldata sources) external {
    require(msg.sender == owner, "oracle: only owner");
    _setAssetsSources(assets, sources);
  }

  function _setAssetsSources(address[] memory assets, address[] memory sources) internal {
    require(assets.length == sources.length, "76");
    for (uint256 i = 0; i < assets.length; i++) {
      _sources[assets[i]] = sources[i];
      emit AssetSourceUpdated(assets[i], sources[i]);
    }
  }

  function getAssetPrice(address asset) public view returns (uint256) {
    if (asset == BASE_CURRENCY) return BASE_CURRENCY_UNIT;
    address source = _sources[asset];
    require(source != address(0), "oracle: no source and no fallback oracle");
    int256 price = IAggregatorV3(source).latestAnswer();
    require(price > 0, "oracle: non-positive answer and no fallback oracle");
    return uint256(price);
  }

  function getAssetsPrices(address[] calldata assets) external view returns (uint256[] memory prices) {
    prices = new uint256[](assets.length);
    for (uint256 i = 0; i < assets.length; i++) prices[i] = getAssetPrice(assets[i]);
  }

  function getSourceOfAsset(address asset) external view returns (address) {
    return _sources[asset];
  }

  function getFallbackOracle() external pure returns (address) {
    return address(0);
  }
}

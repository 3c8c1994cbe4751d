// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";
import {IMorphoOracle} from "./interfaces/IMorphoOracle.sol";

/// Our oracle for Morpho Blue test markets, with the formula of Morpho's ChainlinkOracle for one
/// feed on each side: price = SCALE_FACTOR x base feed answer / quote feed answer, where
/// SCALE_FACTOR = 10^(36 + quote token decimals + quote feed decimals - base token decimals -
/// base feed decimals). The base is the collateral token, the quote the loan token; a crash on
/// the feeds moves the Morpho market as it moves the other test markets.
contract MorphoChainlinkOracle is IMorphoOracle {
  IAggregatorV3 public immutable BASE_FEED_1;
  IAggregatorV3 public immutable QUOTE_FEED_1;
  uint256 public immutable SCALE_FACTOR;

  constructor(IAggregatorV3 baseFeed, IAggregatorV3 quoteFeed, uint256 baseTokenDecimals, uint256 quoteTokenDecimals) {
    BASE_FEED_1 = baseFeed;
    QUOTE_FEED_1 = quoteFeed;
    SCALE_FACTOR = 10 ** (36 + quoteTokenDecimals + quoteFeed.decimals() - baseTokenDecimals - baseFeed.decimals());
  }

  function price() external view returns (uint256) {
    return SCALE_FACTOR * _answer(BASE_FEED_1) / _answer(QUOTE_FEED_1);
  }

  function _answer(IAggregatorV3 feed) internal view returns (uint256) {
    (, int256 answer,,,) = feed.latestRoundData();
    require(answer >= 0, "negative answer");
    return uint256(answer);
  }
}

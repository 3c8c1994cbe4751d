// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";
import {IPriceCapAdapter} from "./interfaces/IPriceCapAdapter.sol";

/// Aave's CAPO price adapter for stablecoins, as deployed: `latestAnswer` is the wrapped
/// ASSET/USD feed's answer, capped at `priceCap`; it answers no `latestRoundData`, so the age of
/// its price is the age of ASSET_TO_USD_AGGREGATOR's round.
contract PriceCapAdapterStable is IPriceCapAdapter {
  IAggregatorV3 public immutable ASSET_TO_USD_AGGREGATOR;
  uint8 public immutable decimals;
  int256 public priceCap;

  constructor(address assetToUsd, int256 cap) {
    ASSET_TO_USD_AGGREGATOR = IAggregatorV3(assetToUsd);
    decimals = IAggregatorV3(assetToUsd).decimals();
    priceCap = cap;
  }

  function latestAnswer() external view returns (int256) {
    int256 answer = ASSET_TO_USD_AGGREGATOR.latestAnswer();
    return answer > priceCap ? priceCap : answer;
  }

  function BASE_TO_USD_AGGREGATOR() external pure returns (address) {
    revert("not an LST adapter");
  }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAggregatorV3} from "./IAggregatorV3.sol";

/// The views of Aave's price adapters (CAPO and the Chainlink synchronicity adapters) that name
/// the Chainlink feed they wrap: keeper judges a price's age by that feed's round.
interface IPriceCapAdapter {
  /// CAPO for stablecoins: the ASSET/USD feed.
  function ASSET_TO_USD_AGGREGATOR() external view returns (IAggregatorV3);
  /// CAPO for LSTs: the BASE/USD feed (the ratio comes from the LST itself).
  function BASE_TO_USD_AGGREGATOR() external view returns (address);
  function latestAnswer() external view returns (int256);
}

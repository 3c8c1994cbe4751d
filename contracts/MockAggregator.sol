// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";

/// A Chainlink-style aggregator whose owner pushes answers (and, for tests, arbitrary round data).
contract MockAggregator is IAggregatorV3 {
  struct Round {
    int256 answer;
    uint256 startedAt;
    uint256 updatedAt;
  }

  uint8 public immutable decimals;
  string public description;
  uint256 public constant version = 4;
  address public immutable owner;
  uint80 internal _latestRound;
  mapping(uint80 => Round) internal _rounds;

  constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
    decimals = decimals_;
    description = description_;
    owner = msg.sender;
    _push(initialAnswer, block.timestamp, block.timestamp);
  }

  /// A new round with `answer`, started and updated now.
  function updateAnswer(int256 answer) external {
    require(msg.sender == owner, "aggregator: only owner");
    _push(answer, block.timestamp, block.timestamp);
  }

  /// A new round with explicit timestamps (lets tests make a feed stale or a round incomplete).
  function updateRoundData(int256 answer, uint256 updatedAt, uint256 startedAt) external {
    require(msg.sender == owner, "aggregator: only owner");
    _push(answer, updatedAt, startedAt);
  }

  function _push(int256 answer, uint256 updatedAt, uint256 startedAt) internal {
    _latestRound += 1;
    _rounds[_latestRound] = Round(answer, startedAt, updatedAt);
    emit NewRound(_latestRound, msg.sender, startedAt);
    emit AnswerUpdated(answer, _latestRound, updatedAt);
  }

  function getRoundData(uint80 roundId) public view returns (uint80, int256, uint256, uint256, uint80) {
    Round memory r = _rounds[roundId];
    require(r.startedAt != 0 || r.updatedAt != 0, "No data present");
    return (roundId, r.answer, r.startedAt, r.updatedAt, roundId);
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return getRoundData(_latestRound);
  }

  function latestAnswer() external view returns (int256) {
    return _rounds[_latestRound].answer;
  }

  function latestTimestamp() external view returns (uint256) {
    return _rounds[_latestRound].updatedAt;
  }

  function latestRound() external view returns (uint256) {
    return _latestRound;
  }
}

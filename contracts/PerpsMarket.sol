// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./interfaces/IERC20.sol";
import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";
import {IPerpsMarketProxy, OrderCommitmentRequest, AsyncOrderData} from "./interfaces/IPerpsMarketProxy.sol";

/// A compact Synthetix v3 perps market (PerpsMarketProxy) for local and test chains.
///
/// Same function signatures, structs, events and errors as the deployed proxy, and the same math:
/// accounts with RBAC permissions; snxUSD collateral (id 0) cross-margining every position;
/// positions with size, last fill price and the funding index at the last interaction; the
/// funding-velocity model (rate drifts with skew / skewScale x maxFundingVelocity per day, funding
/// accrues at the average rate x elapsed days x price); fill price with the skew premium;
/// initial/maintenance margin = notional x (|size| / skewScale x initialMarginRatio +
/// minimumInitialMarginRatio) (x maintenanceMarginScalar) + minimumPositionMargin; the
/// liquidation reward = notional x flagRewardRatio summed, clamped by the keeper reward guards;
/// `canLiquidate` = maintenance + reward > available margin; `liquidate` closes every position,
/// seizes the collateral and pays the reward to the caller, and reverts for a healthy account.
/// Index prices come from Chainlink-style aggregators (the real market reads Pyth/Chainlink
/// through its oracle manager) and the one settlement strategy settles at the index price
/// with no delay. Left out: order fees, multi-collateral, flagging and partial liquidation
/// windows, the interest rate on open interest, max market size, referrers' fees.
contract PerpsMarket is IPerpsMarketProxy {
  bytes32 public constant PERPS_MODIFY_COLLATERAL = "PERPS_MODIFY_COLLATERAL";
  bytes32 public constant PERPS_COMMIT_ASYNC_ORDER = "PERPS_COMMIT_ASYNC_ORDER";
  int256 internal constant UNIT = 1e18;

  struct Position {
    int128 size;
    uint256 lastFillPrice;
    int256 latestInteractionFunding;
  }

  struct Market {
    bool exists;
    string name;
    string symbol;
    address feed;
    uint256 stalenessTolerance;
    uint256 skewScale;
    uint256 maxFundingVelocity;
    uint256 initialMarginRatioD18;
    uint256 minimumInitialMarginRatioD18;
    uint256 maintenanceMarginScalarD18;
    uint256 flagRewardRatioD18;
    uint256 minimumPositionMargin;
    int256 skew;
    int256 lastFundingRate;
    int256 lastFundingValue;
    uint256 lastFundingTime;
  }

  IERC20 public immutable usdToken;
  address public immutable owner;
  uint128 internal accountIdCounter;
  uint256 internal minKeeperRewardUsd;
  uint256 internal maxKeeperRewardUsd;
  uint256 internal minKeeperProfitRatioD18;
  uint256 internal maxKeeperScalingRatioD18;

  mapping(uint128 => address) internal accountOwner;
  mapping(uint128 => mapping(bytes32 => mapping(address => bool))) internal permissions;
  mapping(uint128 => uint256) internal collateral;
  mapping(uint128 => uint128[]) internal openMarkets;
  mapping(uint128 => mapping(uint128 => Position)) internal positions;
  mapping(uint128 => Market) internal markets;
  uint128[] internal marketIds;
  mapping(uint128 => AsyncOrderData) internal orders;

  constructor(address usdToken_) {
    usdToken = IERC20(usdToken_);
    owner = msg.sender;
  }

  // ------------------------------------------------------------------ configuration (owner)

  function createMarket(uint128 marketId, string memory name, string memory symbol, address feed, uint256 staleness)
    external
  {
    require(msg.sender == owner, "only owner");
    require(!markets[marketId].exists, "market exists");
    Market storage m = markets[marketId];
    m.exists = true;
    m.name = name;
    m.symbol = symbol;
    m.feed = feed;
    m.stalenessTolerance = staleness;
    m.lastFundingTime = block.timestamp;
    marketIds.push(marketId);
  }

  function setFundingParameters(uint128 marketId, uint256 skewScale, uint256 maxFundingVelocity) external {
    require(msg.sender == owner, "only owner");
    Market storage m = _market(marketId);
    _recomputeFunding(m, indexPrice(marketId));
    m.skewScale = skewScale;
    m.maxFundingVelocity = maxFundingVelocity;
  }

  function setLiquidationParameters(
    uint128 marketId,
    uint256 initialMarginRatioD18,
    uint256 minimumInitialMarginRatioD18,
    uint256 maintenanceMarginScalarD18,
    uint256 flagRewardRatioD18,
    uint256 minimumPositionMargin
  ) external {
    require(msg.sender == owner, "only owner");
    Market storage m = _market(marketId);
    m.initialMarginRatioD18 = initialMarginRatioD18;
    m.minimumInitialMarginRatioD18 = minimumInitialMarginRatioD18;
    m.maintenanceMarginScalarD18 = maintenanceMarginScalarD18;
    m.flagRewardRatioD18 = flagRewardRatioD18;
    m.minimumPositionMargin = minimumPositionMargin;
  }

  function setKeeperRewardGuards(uint256 minReward, uint256 minProfitRatioD18, uint256 maxReward, uint256 maxScaling)
    external
  {
    require(msg.sender == owner, "only owner");
    minKeeperRewardUsd = minReward;
    minKeeperProfitRatioD18 = minProfitRatioD18;
    maxKeeperRewardUsd = maxReward;
    maxKeeperScalingRatioD18 = maxScaling;
  }

  // ------------------------------------------------------------------ accounts

  function createAccount() external returns (uint128 accountId) {
    accountId = ++accountIdCounter;
    accountOwner[accountId] = msg.sender;
    emit AccountCreated(accountId, msg.sender);
  }

  function getAccountOwner(uint128 accountId) external view returns (address) {
    return accountOwner[accountId];
  }

  function grantPermission(uint128 accountId, bytes32 permission, address user) external {
    if (accountOwner[accountId] != msg.sender) revert PermissionDenied(accountId, "ADMIN", msg.sender);
    permissions[accountId][permission][user] = true;
    emit PermissionGranted(accountId, permission, user, msg.sender);
  }

  function hasPermission(uint128 accountId, bytes32 permission, address user) public view returns (bool) {
    return accountOwner[accountId] == user || permissions[accountId][permission][user];
  }

  function _authorize(uint128 accountId, bytes32 permission) internal view {
    if (accountOwner[accountId] == address(0)) revert AccountNotFound(accountId);
    if (!hasPermission(accountId, permission, msg.sender)) revert PermissionDenied(accountId, permission, msg.sender);
  }

  // ------------------------------------------------------------------ collateral

  function modifyCollateral(uint128 accountId, uint128 collateralId, int256 amountDelta) external {
    _authorize(accountId, PERPS_MODIFY_COLLATERAL);
    if (collateralId != 0) revert InvalidMarket(collateralId);
    if (amountDelta == 0) revert InvalidAmountDelta(amountDelta);
    if (amountDelta > 0) {
      require(usdToken.transferFrom(msg.sender, address(this), uint256(amountDelta)), "transfer in failed");
      collateral[accountId] += uint256(amountDelta);
    } else {
      uint256 amount = uint256(-amountDelta);
      if (amount > collateral[accountId]) revert InsufficientMargin(int256(collateral[accountId]), amount);
      collateral[accountId] -= amount;
      if (openMarkets[accountId].length > 0) {
        (uint256 im,, uint256 reward) = _requiredMargins(accountId);
        int256 available = getAvailableMargin(accountId);
        if (available < int256(im + reward)) revert InsufficientMargin(available, im + reward);
      }
      require(usdToken.transfer(msg.sender, amount), "transfer out failed");
    }
    emit CollateralModified(accountId, collateralId, amountDelta, msg.sender);
  }

  function getCollateralAmount(uint128 accountId, uint128 collateralId) external view returns (uint256) {
    return collateralId == 0 ? collateral[accountId] : 0;
  }

  function totalCollateralValue(uint128 accountId) external view returns (uint256) {
    return collateral[accountId];
  }

  // ------------------------------------------------------------------ margins

  function getAccountOpenPositions(uint128 accountId) external view returns (uint256[] memory ids) {
    uint128[] storage open = openMarkets[accountId];
    ids = new uint256[](open.length);
    for (uint256 i = 0; i < open.length; i++) {
      ids[i] = open[i];
    }
  }

  function getOpenPosition(uint128 accountId, uint128 marketId)
    public
    view
    returns (int256 totalPnl, int256 accruedFunding, int128 positionSize)
  {
    Market storage m = _market(marketId);
    Position storage p = positions[marketId][accountId];
    uint256 price = indexPrice(marketId);
    accruedFunding = int256(p.size) * (_nextFunding(m, price) - p.latestInteractionFunding) / UNIT;
    int256 pnl = int256(p.size) * (int256(price) - int256(p.lastFillPrice)) / UNIT;
    return (pnl + accruedFunding, accruedFunding, p.size);
  }

  function getAvailableMargin(uint128 accountId) public view returns (int256 availableMargin) {
    availableMargin = int256(collateral[accountId]);
    uint128[] storage open = openMarkets[accountId];
    for (uint256 i = 0; i < open.length; i++) {
      (int256 totalPnl,,) = getOpenPosition(accountId, open[i]);
      availableMargin += totalPnl;
    }
  }

  /// Sum over open positions of (initial, maintenance, flag reward); the reward clamped by the guards.
  function _requiredMargins(uint128 accountId) internal view returns (uint256 im, uint256 mm, uint256 reward) {
    uint128[] storage open = openMarkets[accountId];
    if (open.length == 0) return (0, 0, 0);
    uint256 flag;
    for (uint256 i = 0; i < open.length; i++) {
      (uint256 a, uint256 b, uint256 c) =
        _positionMargins(markets[open[i]], positions[open[i]][accountId].size, indexPrice(open[i]));
      im += a;
      mm += b;
      flag += c;
    }
    reward = flag < minKeeperRewardUsd ? minKeeperRewardUsd : flag;
    if (reward > maxKeeperRewardUsd) reward = maxKeeperRewardUsd;
  }

  function _positionMargins(Market storage m, int128 size, uint256 price)
    internal
    view
    returns (uint256 initialMargin, uint256 maintenanceMargin, uint256 flagReward)
  {
    if (size == 0) return (0, 0, 0);
    uint256 sizeAbs = uint256(size < 0 ? -int256(size) : int256(size));
    uint256 impactOnSkew = m.skewScale == 0 ? 0 : sizeAbs * 1e18 / m.skewScale;
    uint256 initialRatio = impactOnSkew * m.initialMarginRatioD18 / 1e18 + m.minimumInitialMarginRatioD18;
    uint256 maintenanceRatio = initialRatio * m.maintenanceMarginScalarD18 / 1e18;
    uint256 notional = sizeAbs * price / 1e18;
    initialMargin = notional * initialRatio / 1e18 + m.minimumPositionMargin;
    maintenanceMargin = notional * maintenanceRatio / 1e18 + m.minimumPositionMargin;
    flagReward = notional * m.flagRewardRatioD18 / 1e18;
  }

  function getRequiredMargins(uint128 accountId)
    public
    view
    returns (uint256 requiredInitialMargin, uint256 requiredMaintenanceMargin, uint256 maxLiquidationReward)
  {
    (uint256 im, uint256 mm, uint256 reward) = _requiredMargins(accountId);
    return (im + reward, mm + reward, reward);
  }

  function canLiquidate(uint128 accountId) public view returns (bool isEligible) {
    if (openMarkets[accountId].length == 0) return false;
    (, uint256 mm,) = getRequiredMargins(accountId);
    return int256(mm) > getAvailableMargin(accountId);
  }

  // ------------------------------------------------------------------ orders

  function commitOrder(OrderCommitmentRequest memory commitment)
    external
    returns (AsyncOrderData memory retOrder, uint256 fees)
  {
    _authorize(commitment.accountId, PERPS_COMMIT_ASYNC_ORDER);
    _market(commitment.marketId);
    if (orders[commitment.accountId].commitmentTime != 0) revert OrderAlreadyCommitted(commitment.marketId, 0);
    if (commitment.sizeDelta == 0) revert OrderNotValid();
    retOrder = AsyncOrderData(block.timestamp, commitment);
    orders[commitment.accountId] = retOrder;
    emit OrderCommitted(
      commitment.marketId,
      commitment.accountId,
      0,
      commitment.sizeDelta,
      commitment.acceptablePrice,
      block.timestamp,
      block.timestamp,
      block.timestamp,
      block.timestamp + 600,
      commitment.trackingCode,
      msg.sender
    );
    return (retOrder, 0);
  }

  function getOrder(uint128 accountId) external view returns (AsyncOrderData memory order) {
    return orders[accountId];
  }

  function settleOrder(uint128 accountId) external {
    AsyncOrderData memory order = orders[accountId];
    if (order.commitmentTime == 0) revert OrderNotValid();
    OrderCommitmentRequest memory r = order.request;
    (uint256 fill, int256 pnl, int256 funding, int128 newSize) = _applyOrder(accountId, r);
    delete orders[accountId];
    _emitSettled(r, accountId, fill, pnl, funding, newSize);
  }

  /// Fill at the index price with the skew premium, realize the old position's pnl and funding
  /// into collateral, and move the position; the margin check applies to orders that add risk.
  function _applyOrder(uint128 accountId, OrderCommitmentRequest memory r)
    internal
    returns (uint256 fill, int256 pnl, int256 funding, int128 newSize)
  {
    Market storage m = _market(r.marketId);
    uint256 price = indexPrice(r.marketId);
    fill = _fillPrice(m.skew, m.skewScale, r.sizeDelta, price);
    if (r.sizeDelta > 0 ? fill > r.acceptablePrice : fill < r.acceptablePrice) {
      revert AcceptablePriceExceeded(fill, r.acceptablePrice);
    }
    _recomputeFunding(m, price);
    Position storage p = positions[r.marketId][accountId];
    funding = int256(p.size) * (m.lastFundingValue - p.latestInteractionFunding) / UNIT;
    pnl = int256(p.size) * (int256(fill) - int256(p.lastFillPrice)) / UNIT;
    int256 newCollateral = int256(collateral[accountId]) + pnl + funding;
    if (newCollateral < 0) revert InsufficientMargin(newCollateral, 0);
    collateral[accountId] = uint256(newCollateral);
    int128 oldSize = p.size;
    newSize = oldSize + r.sizeDelta;
    m.skew += r.sizeDelta;
    p.size = newSize;
    p.lastFillPrice = fill;
    p.latestInteractionFunding = m.lastFundingValue;
    _trackOpen(accountId, r.marketId, oldSize, newSize);
    if (_abs(newSize) > _abs(oldSize) || (oldSize != 0 && newSize != 0 && (newSize > 0) != (oldSize > 0))) {
      _requireInitialMargin(accountId);
    }
  }

  function _requireInitialMargin(uint128 accountId) internal view {
    (uint256 im,, uint256 reward) = _requiredMargins(accountId);
    int256 available = getAvailableMargin(accountId);
    if (available < int256(im + reward)) revert InsufficientMargin(available, im + reward);
  }

  function _emitSettled(
    OrderCommitmentRequest memory r,
    uint128 accountId,
    uint256 fill,
    int256 pnl,
    int256 funding,
    int128 newSize
  ) internal {
    emit OrderSettled(
      r.marketId, accountId, fill, pnl, funding, r.sizeDelta, newSize, 0, 0, 0, 0, r.trackingCode, msg.sender
    );
  }

  // ------------------------------------------------------------------ liquidation

  function liquidate(uint128 accountId) external returns (uint256 liquidationReward) {
    if (!canLiquidate(accountId)) revert NotEligibleForLiquidation(accountId);
    (,, liquidationReward) = _requiredMargins(accountId);
    uint128[] storage open = openMarkets[accountId];
    while (open.length > 0) {
      uint128 marketId = open[open.length - 1];
      Market storage m = markets[marketId];
      _recomputeFunding(m, indexPrice(marketId));
      Position storage p = positions[marketId][accountId];
      int128 size = p.size;
      m.skew -= size;
      delete positions[marketId][accountId];
      open.pop();
      emit PositionLiquidated(accountId, marketId, _abs(size), 0);
    }
    collateral[accountId] = 0;
    delete orders[accountId];
    require(usdToken.transfer(msg.sender, liquidationReward), "reward transfer failed");
    emit AccountLiquidationAttempt(accountId, liquidationReward, true);
  }

  // ------------------------------------------------------------------ market views

  function getMarkets() external view returns (uint256[] memory ids) {
    ids = new uint256[](marketIds.length);
    for (uint256 i = 0; i < marketIds.length; i++) {
      ids[i] = marketIds[i];
    }
  }

  function metadata(uint128 marketId) external view returns (string memory name, string memory symbol) {
    Market storage m = _market(marketId);
    return (m.name, m.symbol);
  }

  function indexPrice(uint128 marketId) public view returns (uint256) {
    Market storage m = _market(marketId);
    (, int256 answer,, uint256 updatedAt,) = IAggregatorV3(m.feed).latestRoundData();
    if (answer <= 0 || block.timestamp - updatedAt > m.stalenessTolerance) revert StalePrice(marketId, updatedAt);
    return uint256(answer) * 10 ** (18 - IAggregatorV3(m.feed).decimals());
  }

  function skew(uint128 marketId) external view returns (int256) {
    return _market(marketId).skew;
  }

  function currentFundingRate(uint128 marketId) external view returns (int256) {
    return _currentFundingRate(_market(marketId));
  }

  function currentFundingVelocity(uint128 marketId) external view returns (int256) {
    return _currentFundingVelocity(_market(marketId));
  }

  function fillPrice(uint128 marketId, int128 orderSize, uint256 price) external view returns (uint256) {
    Market storage m = _market(marketId);
    return _fillPrice(m.skew, m.skewScale, orderSize, price);
  }

  function getFundingParameters(uint128 marketId) external view returns (uint256 skewScale, uint256 maxFundingVelocity) {
    Market storage m = _market(marketId);
    return (m.skewScale, m.maxFundingVelocity);
  }

  function getLiquidationParameters(uint128 marketId)
    external
    view
    returns (uint256, uint256, uint256, uint256, uint256)
  {
    Market storage m = _market(marketId);
    return (
      m.initialMarginRatioD18,
      m.minimumInitialMarginRatioD18,
      m.maintenanceMarginScalarD18,
      m.flagRewardRatioD18,
      m.minimumPositionMargin
    );
  }

  function getKeeperRewardGuards() external view returns (uint256, uint256, uint256, uint256) {
    return (minKeeperRewardUsd, minKeeperProfitRatioD18, maxKeeperRewardUsd, maxKeeperScalingRatioD18);
  }

  // ------------------------------------------------------------------ internals (Synthetix's math)

  function _market(uint128 marketId) internal view returns (Market storage m) {
    m = markets[marketId];
    if (!m.exists) revert InvalidMarket(marketId);
  }

  function _proportionalElapsed(Market storage m) internal view returns (int256) {
    return int256((block.timestamp - m.lastFundingTime) * 1e18 / 1 days);
  }

  function _currentFundingVelocity(Market storage m) internal view returns (int256) {
    if (m.skewScale == 0) return 0;
    int256 pSkew = m.skew * UNIT / int256(m.skewScale);
    if (pSkew > UNIT) pSkew = UNIT;
    if (pSkew < -UNIT) pSkew = -UNIT;
    return pSkew * int256(m.maxFundingVelocity) / UNIT;
  }

  function _currentFundingRate(Market storage m) internal view returns (int256) {
    return m.lastFundingRate + _currentFundingVelocity(m) * _proportionalElapsed(m) / UNIT;
  }

  function _nextFunding(Market storage m, uint256 price) internal view returns (int256) {
    int256 avgFundingRate = -(m.lastFundingRate + _currentFundingRate(m)) * UNIT / (2 * UNIT);
    int256 unrecorded = (avgFundingRate * _proportionalElapsed(m) / UNIT) * int256(price) / UNIT;
    return m.lastFundingValue + unrecorded;
  }

  function _recomputeFunding(Market storage m, uint256 price) internal {
    int256 rate = _currentFundingRate(m);
    m.lastFundingValue = _nextFunding(m, price);
    m.lastFundingRate = rate;
    m.lastFundingTime = block.timestamp;
  }

  function _fillPrice(int256 skew_, uint256 skewScale, int128 size, uint256 price) internal pure returns (uint256) {
    if (skewScale == 0) return price;
    int256 pdBefore = skew_ * UNIT / int256(skewScale);
    int256 pdAfter = (skew_ + size) * UNIT / int256(skewScale);
    int256 priceBefore = int256(price) + int256(price) * pdBefore / UNIT;
    int256 priceAfter = int256(price) + int256(price) * pdAfter / UNIT;
    return uint256(priceBefore + priceAfter) * 1e18 / 2e18;
  }

  function _trackOpen(uint128 accountId, uint128 marketId, int128 oldSize, int128 newSize) internal {
    uint128[] storage open = openMarkets[accountId];
    if (oldSize == 0 && newSize != 0) {
      open.push(marketId);
    } else if (oldSize != 0 && newSize == 0) {
      for (uint256 i = 0; i < open.length; i++) {
        if (open[i] == marketId) {
          open[i] = open[open.length - 1];
          open.pop();
          break;
        }
      }
    }
  }

  function _abs(int128 x) internal pure returns (uint256) {
    return uint256(x < 0 ? -int256(x) : int256(x));
  }
}

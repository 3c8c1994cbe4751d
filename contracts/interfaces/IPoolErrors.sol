// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The custom errors Aave v3.4+ Pools revert with (Pool and its logic libraries, as of v3.7):
/// keeper names a revert by its selector. Declarations only.
interface IPoolErrors {
  error AddressEmptyCode(address target);
  error AssetNotListed();
  error BorrowCapExceeded();
  error BorrowingNotEnabled();
  error CallerNotAToken();
  error CallerNotPoolAdmin();
  error CallerNotPoolConfigurator();
  error CallerNotPositionManager();
  error CallerNotUmbrella();
  error CollateralCannotBeLiquidated();
  error CollateralCannotCoverNewBorrow();
  error EModeCategoryReserved();
  error FailedCall();
  error FlashloanDisabled();
  error HealthFactorLowerThanLiquidationThreshold();
  error HealthFactorNotBelowThreshold();
  error InconsistentEModeCategory();
  error InconsistentFlashloanParams();
  error InvalidAddressesProvider();
  error InvalidAmount();
  error InvalidCollateralInEmode(address reserve, uint256 categoryId);
  error InvalidDebtInEmode(address reserve, uint256 categoryId);
  error InvalidFlashloanExecutorReturn();
  error InvalidInterestRateModeSelected();
  error InvalidReserveIndex();
  error LiquidationGraceSentinelCheckFailed();
  error LtvValidationFailed();
  error MustNotLeaveDust();
  error NoDebtOfSelectedType();
  error NoExplicitAmountToRepayOnBehalf();
  error NoMoreReservesAllowed();
  error NotBorrowableInEMode();
  error NotContract();
  error NotEnoughAvailableUserBalance();
  error ReserveAlreadyAdded();
  error ReserveAlreadyInitialized();
  error ReserveFrozen();
  error ReserveInactive();
  error ReserveNotInDeficit();
  error ReservePaused();
  error SafeCastOverflowedUintDowncast(uint8 bits, uint256 value);
  error SelfLiquidation();
  error SpecifiedCurrencyNotBorrowedByUser();
  error SupplyCapExceeded();
  error SupplyToAToken();
  error UnderlyingBalanceZero();
  error UserCannotHaveDebt();
  error UserHasAssetWithZeroLtv();
  error WithdrawToAToken();
  error ZeroAddressNotValid();
}

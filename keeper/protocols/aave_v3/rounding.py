"""Aave's fixed-point rounding (WadRayMath, PercentageMath: half-up, and the floor/ceil variants
TokenMath uses from v3.5) and MathUtils.calculateCompoundedInterest, as plain integer functions."""

from __future__ import annotations

from keeper.risk.intmath import WAD

RAY = 10**27
HALF_RAY = RAY // 2
PERCENTAGE_FACTOR = 10_000
SECONDS_PER_YEAR = 365 * 86_400


def ray_mul(a: int, b: int) -> int:
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    return a * b // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    return -(-a * b // RAY)


def ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


def ray_div_floor(a: int, b: int) -> int:
    return a * RAY // b


def ray_div_ceil(a: int, b: int) -> int:
    return -(-a * RAY // b)


def wad_div(a: int, b: int) -> int:
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage: int) -> int:
    return (value * percentage + PERCENTAGE_FACTOR // 2) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, percentage: int) -> int:
    return value * percentage // PERCENTAGE_FACTOR


def percent_mul_ceil(value: int, percentage: int) -> int:
    return -(-value * percentage // PERCENTAGE_FACTOR)


def percent_div(value: int, percentage: int) -> int:
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


def percent_div_floor(value: int, percentage: int) -> int:
    return value * PERCENTAGE_FACTOR // percentage


def percent_div_ceil(value: int, percentage: int) -> int:
    return -(-value * PERCENTAGE_FACTOR // percentage)


def compounded_interest(rate_ray: int, last_update: int, now: int) -> int:
    """MathUtils.calculateCompoundedInterest: the three-term binomial approximation (ray)."""
    exp = now - last_update
    if exp <= 0:
        return RAY
    base2 = ray_mul(rate_ray, rate_ray) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base3 = ray_mul(base2, rate_ray) // SECONDS_PER_YEAR
    second = exp * (exp - 1) * base2 // 2
    third = exp * (exp - 1) * max(exp - 2, 0) * base3 // 6
    return RAY + rate_ray * exp // SECONDS_PER_YEAR + second + third

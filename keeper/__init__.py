"""keeper: margin maintenance for DeFi lending markets (protect your positions, liquidate others')."""

__version__ = "0.1.0"

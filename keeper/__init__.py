"""keeper: margin maintenance for DeFi lending and perpetual markets (protect your positions,
liquidate others'). The version is the installed package's: `keeper --version`."""

"""Uniswap v3 as a source: which pools exist for a pair (the factory), what a sale pays (QuoterV2,
many quotes in one multicall pinned to the block), which pools can lend a token (their balance).

QuoterV2's quote functions are not `view`: they run the swap and revert with the result; through
Multicall3's aggregate3 with allowFailure the revert is caught by the quoter itself and the call
returns normally, so quotes batch like any read. A quote is what `SwapRouter.exactInput` pays at
that block for that path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from keeper.sources.abi import DECODE_ERRORS, fn
from keeper.sources.chain import Call, Chain
from keeper.strategy.flash import Ask, Curve, Lender, pair

POOL_INIT_CODE_HASH = "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
"""PoolAddress.POOL_INIT_CODE_HASH of v3-periphery: keccak256 of the core pool's creation code
(the same on every chain Uniswap v3 is deployed with the canonical factory)."""
ZERO = "0x" + "00" * 20


def pool_address(factory: str, token_a: str, token_b: str, fee: int) -> str:
    """CREATE2 address of the (token_a, token_b, fee) pool, as the periphery computes it."""
    t0, t1 = sorted((token_a.lower(), token_b.lower()))
    salt = keccak(bytes.fromhex(t0[2:].rjust(64, "0")) + bytes.fromhex(t1[2:].rjust(64, "0")) + fee.to_bytes(32, "big"))
    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + bytes.fromhex(POOL_INIT_CODE_HASH))[12:]
    return str(to_checksum_address(raw))


def encode_path(tokens: Sequence[str], fees: Sequence[int]) -> bytes:
    """The exactInput path: token, 3-byte fee, token, ... (tokens = fees + 1)."""
    if len(tokens) != len(fees) + 1 or not fees:
        raise ValueError("a path needs one fee between each pair of tokens")
    out = bytes.fromhex(tokens[0][2:])
    for fee, token in zip(fees, tokens[1:], strict=True):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return out


def path_pools(factory: str, path: bytes) -> set[str]:
    """The pools a path swaps through (a lender must not be one: its lock would refuse the swap)."""
    out, k = set(), 0
    while k + 43 <= len(path):
        a, fee, b = path[k : k + 20], int.from_bytes(path[k + 20 : k + 23], "big"), path[k + 23 : k + 43]
        out.add(pool_address(factory, "0x" + a.hex(), "0x" + b.hex(), fee).lower())
        k += 23
    return out


@dataclass(frozen=True)
class Route:
    pool: str
    tokens: tuple[str, ...]
    fees: tuple[int, ...]

    @property
    def path(self) -> bytes:
        return encode_path(self.tokens, self.fees)


class Uniswap:
    """One Uniswap v3 deployment (factory + QuoterV2), with the pools found so far."""

    def __init__(self, factory: str, quoter: str, fees: Iterable[int]):
        self.factory = to_checksum_address(factory)
        self.quoter = to_checksum_address(quoter)
        self.fees = tuple(fees)
        self._pools: dict[tuple[str, str], list[tuple[int, str]]] = {}
        """Unordered pair (lowercase) -> [(fee, pool)] of the pools the factory has."""

    @staticmethod
    def _key(a: str, b: str) -> tuple[str, str]:
        x, y = sorted((a.lower(), b.lower()))
        return x, y

    async def find_pools(self, chain: Chain, pairs: Iterable[tuple[str, str]], block: int) -> None:
        """Ask the factory for each pair's pools at every fee tier (once per pair)."""
        todo = sorted({self._key(a, b) for a, b in pairs if a.lower() != b.lower()} - set(self._pools))
        if not todo:
            return
        get = fn("UniswapV3Factory", "getPool")
        calls = [Call(self.factory, get.encode(to_checksum_address(a), to_checksum_address(b), f), True)
                 for a, b in todo for f in self.fees]  # fmt: skip
        raw = await chain.multicall(calls, block)
        k = 0
        for key in todo:
            found: list[tuple[int, str]] = []
            for fee in self.fees:
                r = raw[k]
                k += 1
                if r:
                    try:
                        (pool,) = get.decode(r)
                    except DECODE_ERRORS:
                        continue
                    if str(pool).lower() != ZERO:
                        found.append((fee, str(to_checksum_address(pool))))
            self._pools[key] = found

    def routes(self, token_in: str, token_out: str) -> list[Route]:
        """The direct routes (one pool per fee tier the factory has)."""
        return [
            Route(pool, (to_checksum_address(token_in), to_checksum_address(token_out)), (fee,))
            for fee, pool in self._pools.get(self._key(token_in, token_out), [])
        ]

    def pools_with(self, token: str) -> list[tuple[int, str]]:
        """Every known pool holding `token` (fee, pool)."""
        return [p for (a, b), pools in self._pools.items() if token.lower() in (a, b) for p in pools]

    async def curves(self, chain: Chain, asks: Sequence[Ask], block: int, points: int) -> dict[tuple[str, str], Curve]:
        """Per pair of the asks, the sale curve of the direct route that pays the most for all of
        them together: QuoterV2 at `points` amounts up to their sum, every route of every pair in
        one multicall at `block`. A pair without a pool, or whose quotes all fail, is absent."""
        await self.find_pools(chain, [(a.token_in, a.token_out) for a in asks], block)
        totals: dict[tuple[str, str], int] = {}
        for a in asks:
            totals[pair(a.token_in, a.token_out)] = totals.get(pair(a.token_in, a.token_out), 0) + a.amount_in
        q = fn("UniswapV3QuoterV2", "quoteExactInput")
        plan = [
            (key, route, total * (j + 1) // points)
            for key, total in totals.items()
            if total > 0
            for route in self.routes(*key)
            for j in range(points)
        ]
        raw = await chain.multicall([Call(self.quoter, q.encode(r.path, x), True) for _, r, x in plan], block)
        found: dict[tuple[tuple[str, str], Route], list[tuple[int, int]]] = {}
        for (key, route, x), r in zip(plan, raw, strict=True):
            got = found.setdefault((key, route), [])
            try:
                if r:
                    got.append((x, int(q.decode(r)[0])))
            except DECODE_ERRORS:
                continue
        out: dict[tuple[str, str], Curve] = {}
        for (key, route), pts in found.items():
            pts = _increasing(pts)
            if pts and (key not in out or pts[-1][1] > out[key].points[-1][1]):
                out[key] = Curve(route.path, frozenset({route.pool.lower()}), tuple(pts))
        return out

    async def lenders(self, chain: Chain, tokens: Iterable[str], block: int) -> dict[str, list[Lender]]:
        """Per token, the known pools that hold it, with their balance of it (flash lenders)."""
        bal = fn("ERC20", "balanceOf")
        plan = [(t, fee, pool) for t in sorted({t.lower() for t in tokens}) for fee, pool in self.pools_with(t)]
        raw = await chain.multicall(
            [Call(to_checksum_address(t), bal.encode(pool), True) for t, _, pool in plan], block
        )
        out: dict[str, list[Lender]] = {}
        for (token, fee, pool), r in zip(plan, raw, strict=True):
            try:
                balance = int(decode(["uint256"], r)[0]) if r else 0
            except DECODE_ERRORS:
                balance = 0
            out.setdefault(token, []).append(Lender("uniswap", pool, fee, balance))
        return out


def _increasing(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The quoted points up to the first that fails to pay more (a pool running out of liquidity)."""
    out: list[tuple[int, int]] = []
    for x, y in sorted(points):
        if out and y <= out[-1][1]:
            break
        out.append((x, y))
    return out

"""The optional off-chain reference prices: a URL answering JSON {"SYMBOL": usd_price, ...}."""

from __future__ import annotations

import aiohttp


async def fetch_reference(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """USD prices by symbol; raises on an unreachable URL or a body that is not a JSON object
    (non-numeric entries are ignored)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
        session.get(url) as reply,
    ):
        body = await reply.json(content_type=None)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return {str(k): float(v) for k, v in body.items() if isinstance(v, int | float) and not isinstance(v, bool)}

"""The keeper's nonces: a local counter, so a burst signs many transactions without asking the
node for each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from keeper.execution.journal import Journal
from keeper.sources.chain import Chain


@dataclass
class NonceManager:
    """Local nonce counter: the larger of the node's pending count and one above the journal's
    highest signed nonce (so a restart never reuses a nonce a signed transaction holds), then
    incremented per send."""

    chain: Chain
    address: str
    journal: Journal | None = None
    _next: int | None = field(default=None)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def take(self) -> int:
        """The next nonce (TransientError when the node's count cannot be read: nothing taken).
        Markets execute concurrently: one reader at a time, so two never get the same nonce."""
        async with self._lock:
            if self._next is None:
                node = await self.chain.nonce(self.address, "pending")
                journal = self.journal.next_nonce() if self.journal is not None else None
                self._next = max(node, journal or 0)
            n = self._next
            self._next += 1
            return n

    def resync(self) -> None:
        self._next = None

    def give_back(self, nonce: int) -> None:
        """Nonces from `nonce` up were taken but never reached a node: hand them out again."""
        if self._next is not None and nonce < self._next:
            self._next = nonce

    def give_back_if_last(self, first: int, last: int) -> bool:
        """Nonces `first`..`last` never reached a node: hand them out again if none above them
        was taken meanwhile (True); else they must be filled (False)."""
        if self._next == last + 1:
            self._next = first
            return True
        return False

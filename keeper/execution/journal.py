"""The journal: every action's life in one SQLite file (WAL), written before each step is taken.

An action is keyed by (market, account, intent, epoch) and goes decided -> signed -> sent ->
confirmed | failed | dropped (or skipped). Each signed transaction is stored with its raw bytes
and hash *before* it is broadcast, so a keeper killed at any point can, on restart, find what
is in flight, rebroadcast it and wait for it, and never sign a second transaction for an action
already signed. Spending and action caps are computed from it, so they survive restarts too.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keeper.errors import ConfigError, FatalError, StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    key TEXT PRIMARY KEY,
    market TEXT NOT NULL,
    account TEXT NOT NULL,
    intent TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_account ON actions (market, account, updated);
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY,
    action_key TEXT,
    nonce INTEGER NOT NULL,
    raw BLOB NOT NULL,
    description TEXT,
    role TEXT NOT NULL,
    max_fee_wei INTEGER NOT NULL,
    gas_limit INTEGER NOT NULL,
    state TEXT NOT NULL,
    gas_cost_wei INTEGER NOT NULL DEFAULT 0,
    block INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    route TEXT NOT NULL DEFAULT 'public'
);
CREATE INDEX IF NOT EXISTS txs_state ON txs (state);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS probe (blob BLOB);
"""
PENDING = ("signed", "sent")
"""Transaction states that are (or may be) in flight."""


class _Db:
    """The SQLite connection, with its failures (a full disk, a read-only file, an I/O error)
    raised as StorageError naming the file: the keeper sends nothing until writes succeed."""

    def __init__(self, path: str):
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)  # autocommit: each write is durable

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def executescript(self, sql: str) -> None:
        try:
            self.conn.executescript(sql)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()


def open_db(path: str, what: str) -> _Db:
    """Open (creating it and its directory) an SQLite file; ConfigError naming the setting when
    the path cannot be written at start-up."""
    try:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = _Db(path)
        db.conn.execute("PRAGMA journal_mode=WAL")
        return db
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"{what} {path} cannot be written ({exc}); set [execution] journal_path "
            "(KEEPER_EXECUTION_JOURNAL_PATH) to a writable file"
        ) from None


@dataclass(frozen=True)
class ActionKey:
    market: str
    account: str
    intent: str
    epoch: int

    def __str__(self) -> str:
        return f"{self.market}|{self.account}|{self.intent}|{self.epoch}"


@dataclass(frozen=True)
class TxRow:
    hash: str
    action_key: str | None
    nonce: int
    raw: bytes
    description: str
    role: str
    """'action' (the action's own transaction) or 'approval' (an ERC20 approval before it)."""
    max_fee_wei: int
    gas_limit: int
    state: str
    route: str = "public"
    """How it was sent: 'public' (the RPC), 'private' (the relay, alone) or 'bundle' (the relay,
    with the transactions around it): a recovered private one goes back to the relay only."""


class Journal:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = open_db(self.path, "the journal")
        self.db.execute("PRAGMA synchronous=FULL")
        try:
            self.db.executescript(SCHEMA)
        except StorageError as exc:
            raise ConfigError(f"the journal {exc} (set [execution] journal_path to a writable file)") from None
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(txs)").fetchall()}
        if "route" not in columns:  # a journal from before private submission
            self.db.execute("ALTER TABLE txs ADD COLUMN route TEXT NOT NULL DEFAULT 'public'")

    def close(self) -> None:
        self.db.close()

    def writable(self) -> str:
        """'' when a write that grows the file commits; else why not (the disk is full, the file
        read-only). The probe row is deleted in the same commit."""
        try:
            with self.atomic():
                self.db.execute("INSERT INTO probe VALUES (?)", (b"\0" * 8192,))
                self.db.execute("DELETE FROM probe")
        except StorageError as exc:
            return str(exc)
        return ""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Several writes as one durable commit (a burst of signed transactions: all recorded
        before the first is broadcast, at the cost of one fsync instead of one each)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.conn.rollback()
            raise

    def bind(self, chain_id: int, genesis_hash: str) -> None:
        """Tie the journal to one chain; FatalError if it already belongs to another (a restarted
        dev chain, or a file copied from another network): its transactions mean nothing there."""
        want = f"{chain_id}:{genesis_hash}"
        row = self.db.execute("SELECT value FROM meta WHERE name = 'chain'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('chain', ?)", (want,))
        elif row[0] != want:
            raise FatalError(
                f"the journal {self.path} belongs to chain {row[0]}, not this one ({want}); move it away or "
                "set [execution] journal_path (KEEPER_EXECUTION_JOURNAL_PATH)"
            )

    # -- actions
    def begin(self, key: ActionKey, detail: dict[str, Any]) -> bool:
        """Record a decided action; False if this key was already recorded (the action is not new)."""
        now = time.time()
        cur = self.db.execute(
            "INSERT OR IGNORE INTO actions VALUES (?, ?, ?, ?, ?, 'decided', ?, NULL, ?, ?)",
            (str(key), key.market, key.account, key.intent, key.epoch, json.dumps(detail, default=str), now, now),
        )
        return cur.rowcount == 1

    def set_action(self, key: ActionKey | str, state: str, error: str | None = None) -> None:
        self.db.execute(
            "UPDATE actions SET state = ?, error = COALESCE(?, error), updated = ? WHERE key = ?",
            (state, error, time.time(), str(key)),
        )

    def action_state(self, key: ActionKey | str) -> str | None:
        row = self.db.execute("SELECT state FROM actions WHERE key = ?", (str(key),)).fetchone()
        return None if row is None else str(row[0])

    def in_flight(self) -> set[tuple[str, str]]:
        """(market, account) of every action with a transaction that may still land."""
        rows = self.db.execute(
            "SELECT DISTINCT a.market, a.account FROM actions a JOIN txs t ON t.action_key = a.key "
            f"WHERE t.state IN {PENDING}"
        ).fetchall()
        return {(str(m), str(a)) for m, a in rows}

    def mined_after(self, block: int) -> dict[tuple[str, str], int]:
        """(market, account) of every action with a transaction mined after `block`, with the
        latest such block: a view read at `block` does not show what that transaction did."""
        rows = self.db.execute(
            "SELECT a.market, a.account, MAX(t.block) FROM actions a JOIN txs t ON t.action_key = a.key "
            "WHERE t.block > ? AND t.state IN ('confirmed', 'failed') GROUP BY a.market, a.account",
            (block,),
        ).fetchall()
        return {(str(m), str(a)): int(b) for m, a, b in rows}

    def last_sent(self, market: str, account: str) -> float | None:
        """When an action on this account was last sent (seconds since the epoch)."""
        row = self.db.execute(
            "SELECT MAX(t.created) FROM txs t JOIN actions a ON t.action_key = a.key "
            "WHERE a.market = ? AND a.account = ? AND t.state != 'signed'",
            (market, account),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def actions_sent_since(self, since: float) -> int:
        row = self.db.execute(
            "SELECT COUNT(DISTINCT action_key) FROM txs WHERE created >= ? AND state != 'signed' AND role = 'action'",
            (since,),
        ).fetchone()
        return int(row[0])

    # -- transactions
    def add_tx(
        self,
        action_key: ActionKey | str | None,
        tx_hash: str,
        nonce: int,
        raw: bytes,
        description: str,
        max_fee_wei: int,
        gas_limit: int,
        role: str = "action",
        route: str = "public",
    ) -> None:
        """Store a signed transaction before it is broadcast."""
        now = time.time()
        self.db.execute(
            "INSERT OR REPLACE INTO txs (hash, action_key, nonce, raw, description, role, max_fee_wei, gas_limit, "
            "state, gas_cost_wei, block, created, updated, route) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'signed', 0, NULL, ?, ?, ?)",
            (
                tx_hash,
                None if action_key is None else str(action_key),
                nonce,
                raw,
                description,
                role,
                max_fee_wei,
                gas_limit,
                now,
                now,
                route,
            ),
        )

    def tx_raw(self, tx_hash: str) -> bytes:
        row = self.db.execute("SELECT raw FROM txs WHERE hash = ?", (tx_hash,)).fetchone()
        if row is None:
            raise StorageError(f"{self.path}: no transaction {tx_hash} in the journal")
        return bytes(row[0])

    def set_route(self, tx_hash: str, route: str) -> None:
        self.db.execute("UPDATE txs SET route = ?, updated = ? WHERE hash = ?", (route, time.time(), tx_hash))

    def set_tx(self, tx_hash: str, state: str, *, gas_cost_wei: int | None = None, block: int | None = None) -> None:
        self.db.execute(
            "UPDATE txs SET state = ?, gas_cost_wei = COALESCE(?, gas_cost_wei), block = COALESCE(?, block), "
            "updated = ? WHERE hash = ?",
            (state, gas_cost_wei, block, time.time(), tx_hash),
        )

    def unconfirm_after(self, block: int) -> int:
        """A reorg removed every block after `block`: transactions mined there are in flight again
        (their actions too). Returns how many."""
        keys = [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT action_key FROM txs WHERE block > ? AND state IN ('confirmed', 'failed') "
                "AND role = 'action'",
                (block,),
            )
        ]
        cur = self.db.execute(
            "UPDATE txs SET state = 'sent', block = NULL, gas_cost_wei = 0, updated = ? "
            "WHERE block > ? AND state IN ('confirmed', 'failed')",
            (time.time(), block),
        )
        for key in keys:
            if key:
                self.set_action(key, "sent")
        return int(cur.rowcount)

    def pending_txs(self) -> list[TxRow]:
        rows = self.db.execute(
            "SELECT hash, action_key, nonce, raw, description, role, max_fee_wei, gas_limit, state, route FROM txs "
            f"WHERE state IN {PENDING} ORDER BY nonce"
        ).fetchall()
        return [
            TxRow(
                str(r[0]),
                r[1],
                int(r[2]),
                bytes(r[3]),
                str(r[4]),
                str(r[5]),
                int(r[6]),
                int(r[7]),
                str(r[8]),
                str(r[9]),
            )
            for r in rows
        ]

    def pending_count(self) -> int:
        """Transactions that are (or may be) in flight."""
        return int(self.db.execute(f"SELECT COUNT(*) FROM txs WHERE state IN {PENDING}").fetchone()[0])

    def next_nonce(self) -> int | None:
        """One above the highest nonce held by a transaction that may still land (None: none)."""
        row = self.db.execute(f"SELECT MAX(nonce) FROM txs WHERE state IN {PENDING}").fetchone()
        return None if row is None or row[0] is None else int(row[0]) + 1

    def gas_spent_since(self, since: float) -> int:
        """Wei paid for gas by transactions mined since `since`, plus the worst case of those in flight."""
        mined = self.db.execute(
            "SELECT COALESCE(SUM(gas_cost_wei), 0) FROM txs WHERE created >= ? AND state IN ('confirmed', 'failed')",
            (since,),
        ).fetchone()
        flying = self.db.execute(
            f"SELECT COALESCE(SUM(max_fee_wei * gas_limit), 0) FROM txs WHERE state IN {PENDING}"
        ).fetchone()
        return int(mined[0]) + int(flying[0])

    def counts(self) -> dict[str, int]:
        """Actions by state (for reports and tests)."""
        return {str(s): int(n) for s, n in self.db.execute("SELECT state, COUNT(*) FROM actions GROUP BY state")}


CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (market TEXT PRIMARY KEY, block INTEGER NOT NULL, accounts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Checkpoints(Journal):
    """Discovery checkpoints: per market, the last block processed and every account known, so a
    restart (or `keeper status`) scans only the blocks since, not the market's whole history.
    A separate file from the journal (it is shared by dry runs and every key), bound to its chain
    the same way."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = open_db(self.path, "the checkpoint file")
        try:
            self.db.executescript(CHECKPOINT_SCHEMA)
        except StorageError as exc:
            raise ConfigError(f"the checkpoint file {exc}") from None

    def load(self, market: str) -> tuple[int, list[str]] | None:
        row = self.db.execute("SELECT block, accounts FROM checkpoints WHERE market = ?", (market,)).fetchone()
        return None if row is None else (int(row[0]), list(json.loads(row[1])))

    def save(self, market: str, block: int, accounts: list[str]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (market, block, json.dumps(sorted(accounts)))
        )

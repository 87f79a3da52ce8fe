"""Per-model SQLite event log (WAL, ``synchronous=FULL``) and the store of predictions awaiting labels."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "IdHeld", "connect"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tallies (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_WAITING = "SELECT value FROM tallies WHERE name = 'pending'"  # rows of ``pending``, kept by each transaction


class IdHeld(ValueError):
    """A stored prediction already waits under this id with other features (``index``: its place among the
    ids given)."""

    def __init__(self, index: int, id_: str) -> None:
        super().__init__(f"a prediction for other features already awaits a label under id {id_!r}")
        self.index = index


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode; ``synchronous=FULL`` makes every commit reach the disk before it returns."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open: SQLite ends it itself on some errors (a full disk)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _keep_at_most(conn: sqlite3.Connection, limit: int, waiting: int) -> None:
    """In a transaction: drop the oldest waiting predictions beyond ``limit`` (one stored again is the newest)
    and record the count, ``waiting`` before the drop."""
    if waiting > limit:
        conn.execute("DELETE FROM pending WHERE n IN (SELECT n FROM pending ORDER BY n LIMIT ?)", (waiting - limit,))
        waiting = limit
    conn.execute("UPDATE tallies SET value = ? WHERE name = 'pending'", (waiting,))


class EventLog:
    """Accepted learn requests of one model, in order, plus stored predictions keyed by id.

    Only the model's writer thread appends events; predictions with ids use a second connection
    (``synchronous=NORMAL``: they survive a killed process, not a power cut).
    """

    def __init__(self, path: Path, max_pending: int) -> None:
        self.path = path
        self.max_pending = max_pending
        self._writer = connect(path, "FULL")
        self._writer.executescript(_SCHEMA)  # (a log written before the tally: counted once, here)
        self._writer.execute("INSERT OR IGNORE INTO tallies (name, value) SELECT 'pending', count(*) FROM pending")
        with _transaction(self._writer) as conn:  # a limit lowered since the last run holds from the start
            _keep_at_most(conn, max_pending, int(conn.execute(_WAITING).fetchone()[0]))
        self._reader = connect(path, "NORMAL")
        self._reader_lock = threading.Lock()

    def append(self, payloads: Sequence[dict[str, Any]], consumed_ids: Sequence[str]) -> int:
        """Append events and drop consumed pending ids in one durable transaction; return the last seq."""
        with _transaction(self._writer) as conn:
            for payload in payloads:
                conn.execute("INSERT INTO events (payload) VALUES (?)", (json.dumps(payload),))
            taken = conn.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in consumed_ids]).rowcount
            if taken > 0:
                conn.execute("UPDATE tallies SET value = value - ? WHERE name = 'pending'", (taken,))
            seq = int(conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0])
        return seq

    def replay(self, after: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Events with ``seq > after`` in order."""
        cur = self._writer.execute("SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq", (after,))
        for seq, payload in cur:
            yield int(seq), json.loads(payload)

    def compact(self, upto: int) -> None:
        """Delete the events a checkpoint already holds."""
        self._writer.execute("DELETE FROM events WHERE seq <= ?", (upto,))
        self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def covers(self, after: int) -> bool:
        """Whether the log still holds every event with ``seq > after`` (compaction deletes a prefix)."""
        first = self._writer.execute("SELECT min(seq) FROM events").fetchone()[0]
        if first is None:
            return self.last_seq() <= after
        return int(first) <= after + 1

    def count(self) -> int:
        return int(self._writer.execute("SELECT count(*) FROM events").fetchone()[0])

    def last_seq(self) -> int:
        row = self._writer.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def put_pending(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Store ``(id, {"x": row, "p": prediction})``; the oldest are dropped beyond ``max_pending``.

        An id that already waits with the same features is stored again (a retried request: the newer
        prediction replaces the older); with other features, :class:`IdHeld` is raised and nothing is stored.
        """
        if len({i for i, _ in items}) != len(items):
            raise ValueError("ids must be unique within a call")
        now = time.time()
        with self._reader_lock, _transaction(self._reader) as conn:
            new = 0
            for k, (i, p) in enumerate(items):
                held = conn.execute("SELECT payload FROM pending WHERE id = ?", (i,)).fetchone()
                if held is not None and json.loads(held[0])["x"] != json.loads(json.dumps(p["x"])):
                    raise IdHeld(k, i)
                new += held is None
            conn.executemany(
                "INSERT OR REPLACE INTO pending (id, payload, created) VALUES (?, ?, ?)",
                [(i, json.dumps(p), now) for i, p in items],
            )
            _keep_at_most(conn, self.max_pending, int(conn.execute(_WAITING).fetchone()[0]) + new)

    def get_pending(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored entries for the ids that exist (read by the writer thread)."""
        found: dict[str, dict[str, Any]] = {}
        for i in ids:
            row = self._writer.execute("SELECT payload FROM pending WHERE id = ?", (i,)).fetchone()
            if row is not None:
                found[i] = json.loads(row[0])
        return found

    def pending_count(self) -> int:
        with self._reader_lock:
            return int(self._reader.execute(_WAITING).fetchone()[0])

    def close(self) -> None:
        with self._reader_lock:
            self._reader.close()
        self._writer.close()

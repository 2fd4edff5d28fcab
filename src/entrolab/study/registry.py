"""The run registry of a study: one SQLite table of units of work and their state.

A unit is planned (`plan` is idempotent), claimed
(`pending -> running`), and finished (`running -> done`, or `failed` with the
error). Its outputs are written atomically (`entrolab.study.units`) *before*
it is marked done, so after a crash at any moment a unit is either done with
all of its outputs in place, or not done and run again from scratch, which
overwrites whatever partial output it had left. Units left `running` by a
process that died are reset to `pending` when a study starts.

Each unit carries a fingerprint: a hash of the parts of the config it
depends on (and of its dependencies' fingerprints). Planning again with a
changed config keeps the done units whose fingerprint is unchanged, resets
those whose fingerprint changed to `pending`, and forgets units that are no
longer planned: a study is extended or corrected by editing its config and
running the same command, and only the affected work is redone.

SQLite (stdlib) because the registry must survive power loss (journaled,
`synchronous=FULL`) and be readable while a study runs (WAL); a distributed
executor will keep this one writer, the driver.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

STATES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    deps        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  REAL,
    finished_at REAL,
    wall_s      REAL,
    error       TEXT,
    seq         INTEGER NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Unit:
    """A unit of work: what an executor runs (`entrolab.study.units.execute`)."""

    id: str  # e.g. "train/linear_h64x64_clip", "evaluate/linear_h64x64_clip/obs_noise"
    kind: str  # "train" | "evaluate" | "measures"
    payload: dict = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    fingerprint: str = ""


class Registry:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    # ---- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with closing(self._connect()) as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- units --------------------------------------------------------------
    def plan(self, units: list[Unit]) -> dict[str, list[str]]:
        """Make the registry hold exactly `units`; returns the ids added, reset and removed."""
        changes: dict[str, list[str]] = {"added": [], "reset": [], "removed": []}
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            known = {i: f for i, f in db.execute("SELECT id, fingerprint FROM units")}
            for seq, u in enumerate(units):
                row = (u.kind, json.dumps(u.payload, sort_keys=True), json.dumps(list(u.deps)), seq, u.fingerprint)
                if u.id not in known:
                    db.execute("INSERT INTO units (kind, payload, deps, seq, fingerprint, id) VALUES (?, ?, ?, ?, ?, ?)",
                               (*row, u.id))
                    changes["added"].append(u.id)
                elif known[u.id] != u.fingerprint:
                    db.execute("UPDATE units SET kind = ?, payload = ?, deps = ?, seq = ?, fingerprint = ?, "
                               "state = 'pending', error = NULL WHERE id = ?", (*row, u.id))
                    changes["reset"].append(u.id)
                else:
                    db.execute("UPDATE units SET seq = ? WHERE id = ?", (seq, u.id))
            planned = {u.id for u in units}
            for unit_id in sorted(set(known) - planned):
                db.execute("DELETE FROM units WHERE id = ?", (unit_id,))
                changes["removed"].append(unit_id)
            db.execute("COMMIT")
        return changes

    def recover(self) -> int:
        """Reset units left `running` (or `failed`) by an earlier process to `pending`."""
        with closing(self._connect()) as db:
            cur = db.execute("UPDATE units SET state = 'pending' WHERE state IN ('running', 'failed')")
            return cur.rowcount

    def units(self, state: str | None = None) -> list[Unit]:
        query = "SELECT id, kind, payload, deps, fingerprint FROM units"
        args: tuple = ()
        if state is not None:
            query += " WHERE state = ?"
            args = (state,)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
        return [Unit(i, k, json.loads(p), tuple(json.loads(d)), f) for i, k, p, d, f in rows]

    def states(self) -> dict[str, str]:
        with closing(self._connect()) as db:
            return dict(db.execute("SELECT id, state FROM units ORDER BY seq").fetchall())

    def table(self):
        """The registry as a pandas DataFrame (for reports and debugging)."""
        import pandas as pd

        with closing(self._connect()) as db:
            return pd.read_sql_query(
                "SELECT id, kind, state, attempts, started_at, finished_at, wall_s, error FROM units ORDER BY seq", db)

    def ready(self) -> list[Unit]:
        """Pending units whose dependencies are all done, in plan order."""
        states = self.states()
        return [u for u in self.units("pending") if all(states.get(d) == "done" for d in u.deps)]

    def claim(self, unit_id: str) -> None:
        with closing(self._connect()) as db:
            db.execute("UPDATE units SET state = 'running', attempts = attempts + 1, started_at = ?, error = NULL "
                       "WHERE id = ?", (time.time(), unit_id))

    def finish(self, unit_id: str, wall_s: float) -> None:
        with closing(self._connect()) as db:
            db.execute("UPDATE units SET state = 'done', finished_at = ?, wall_s = ? WHERE id = ?",
                       (time.time(), wall_s, unit_id))

    def fail(self, unit_id: str, error: str) -> None:
        with closing(self._connect()) as db:
            db.execute("UPDATE units SET state = 'failed', finished_at = ?, error = ? WHERE id = ?",
                       (time.time(), error, unit_id))

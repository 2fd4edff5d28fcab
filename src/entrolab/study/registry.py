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

A registry written before fingerprints existed holds units whose
fingerprint is `''` (unknown). Planning resets them to `pending` like any
changed fingerprint, unless the caller passes `plan(..., adopt_unknown=True)`
(it does so only when the study's resolved config is unchanged, so the
outputs already in place are what the config describes): then they take the
planned fingerprint and keep their state, and are reported as "adopted".

SQLite (stdlib) because the registry must survive power loss (journaled,
`synchronous=FULL`) and be readable while a study runs (WAL); a distributed
executor will keep this one writer, the driver.

Schema versions. The layout's version is stored in SQLite's
`PRAGMA user_version`; `SCHEMA_VERSION` is the current one.

    1  legacy: the `units` table without `fingerprint`, perhaps no `meta` table
    2  current: `units` with `fingerprint TEXT NOT NULL DEFAULT ''`, and `meta`

Files written before versioning have user_version 0 and are identified by
their tables: an empty file gets the current schema; a `units` table without
`fingerprint` is version 1; one with `fingerprint` is version 2 and only has
its user_version stamped. `Registry(path)` migrates an older file in place,
one step per version (`_MIGRATIONS`), each step in its own transaction
(`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on error) that also stamps the
new user_version, so an interrupted or failed migration leaves the file at
its previous version with its data intact:

    1 -> 2  ALTER TABLE units ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
            CREATE TABLE IF NOT EXISTS meta. Units keep their state (done stays
            done); their fingerprint is '' until adopted or reset by `plan`.

Opening never drops data: a file with a user_version newer than
`SCHEMA_VERSION` (written by a newer entrolab), a file that is not a SQLite
database, or one with other tables but no entrolab `units` table raises
`RegistryError`, and the file is left as it was.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

STATES = ("pending", "running", "done", "failed")

SCHEMA_VERSION = 2

_UNITS_TABLE = """
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
)"""
_META_TABLE = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_SCHEMA = _UNITS_TABLE + ";\n" + _META_TABLE + ";\n"  # the current layout (SCHEMA_VERSION)

# Columns of `units` in the legacy layout (version 1); version 2 adds `fingerprint`.
_V1_COLUMNS = frozenset({"id", "kind", "payload", "deps", "state", "attempts", "started_at", "finished_at",
                         "wall_s", "error", "seq"})


class RegistryError(RuntimeError):
    """A registry file that cannot be opened (newer schema, not a registry, failed migration)."""


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE units ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
    db.execute(_META_TABLE)


# _MIGRATIONS[v - 1] takes a file from version v to v + 1, inside a transaction it must not end.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1_to_2]
assert len(_MIGRATIONS) == SCHEMA_VERSION - 1


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
        try:
            # Check first on a plain connection, so that a file this code must refuse (newer schema,
            # not a registry, not a database) is left exactly as it was, journal mode included.
            with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as db:
                stored, _ = self._version(db)
                current = stored == SCHEMA_VERSION and self._has_table(db, "meta")
            if not current:
                with closing(self._connect()) as db:
                    self._migrate(db)
        except sqlite3.OperationalError as err:  # locked, unreadable, a directory, ...
            raise RegistryError(f"cannot open the registry {self.path}: {err}") from err
        except sqlite3.DatabaseError as err:  # "file is not a database", corruption
            raise RegistryError(f"{self.path} is not an entrolab registry (not a usable SQLite database: "
                                f"{err})") from err

    # ---- schema versions ----------------------------------------------------
    @staticmethod
    def _has_table(db: sqlite3.Connection, name: str) -> bool:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() \
            is not None

    def _version(self, db: sqlite3.Connection) -> tuple[int, int]:
        """(stored user_version, layout version); the layout version is 0 for a file with no tables yet."""
        stored = db.execute("PRAGMA user_version").fetchone()[0]
        if stored > SCHEMA_VERSION:
            raise RegistryError(
                f"{self.path} has registry schema version {stored}: it was written by a newer entrolab "
                f"(this one reads versions up to {SCHEMA_VERSION}); upgrade entrolab to open it")
        tables = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if stored == 0 and not tables:
            return stored, 0
        if "units" not in tables:
            raise RegistryError(f"{self.path} is not an entrolab registry: it has no units table "
                                f"(tables: {', '.join(sorted(tables)) or 'none'})")
        columns = {row[1] for row in db.execute("PRAGMA table_info(units)")}
        if not _V1_COLUMNS <= columns:
            raise RegistryError(f"{self.path} is not an entrolab registry: its units table lacks the columns "
                                f"{', '.join(sorted(_V1_COLUMNS - columns))}")
        version = stored or (2 if "fingerprint" in columns else 1)
        if version >= 2 and "fingerprint" not in columns:
            raise RegistryError(f"{self.path} is damaged: schema version {version} but no fingerprint column")
        return stored, version

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create, stamp or migrate the file up to SCHEMA_VERSION, one transaction per step."""
        while True:
            step = 0
            db.execute("BEGIN IMMEDIATE")  # (re)read under the write lock: another process may have migrated
            try:
                stored, version = self._version(db)
                step = version
                if version == 0:  # a new file
                    db.execute(_UNITS_TABLE)
                    db.execute(_META_TABLE)
                    version = SCHEMA_VERSION
                elif version < SCHEMA_VERSION:
                    _MIGRATIONS[version - 1](db)
                    version += 1
                else:
                    db.execute(_META_TABLE)  # the current layout: at most user_version (or meta) is missing
                if version != stored:
                    db.execute(f"PRAGMA user_version = {int(version)}")
                db.execute("COMMIT")
            except BaseException as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(err, Exception) and not isinstance(err, RegistryError) and 0 < step < SCHEMA_VERSION:
                    raise RegistryError(
                        f"migrating the registry {self.path} from schema version {step} to {step + 1} failed "
                        f"({type(err).__name__}: {err}); the file is left unchanged") from err
                raise
            if version == SCHEMA_VERSION:
                return

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
    def plan(self, units: list[Unit], adopt_unknown: bool = False) -> dict[str, list[str]]:
        """Make the registry hold exactly `units`; returns the ids added, reset, adopted and removed.

        A known unit whose fingerprint changed is reset to `pending`. One whose
        stored fingerprint is `''` (unknown: planned before fingerprints
        existed) is reset too, unless `adopt_unknown`: then it takes the
        planned fingerprint and keeps its state ("adopted"). Pass True only
        when the config the registry was planned from is unchanged.
        """
        changes: dict[str, list[str]] = {"added": [], "reset": [], "adopted": [], "removed": []}
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            known = {i: f for i, f in db.execute("SELECT id, fingerprint FROM units")}
            for seq, u in enumerate(units):
                row = (u.kind, json.dumps(u.payload, sort_keys=True), json.dumps(list(u.deps)), seq, u.fingerprint)
                if u.id not in known:
                    db.execute("INSERT INTO units (kind, payload, deps, seq, fingerprint, id) VALUES (?, ?, ?, ?, ?, ?)",
                               (*row, u.id))
                    changes["added"].append(u.id)
                elif adopt_unknown and known[u.id] == "" and u.fingerprint != "":
                    db.execute("UPDATE units SET kind = ?, payload = ?, deps = ?, seq = ?, fingerprint = ? "
                               "WHERE id = ?", (*row, u.id))
                    changes["adopted"].append(u.id)
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

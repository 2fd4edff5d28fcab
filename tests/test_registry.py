"""The study registry: planning, states, and schema versions with in-place migration."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest

from entrolab.study import registry as registry_mod
from entrolab.study.registry import SCHEMA_VERSION, Registry, RegistryError, Unit

# The units table as written before fingerprints existed (schema version 1), without meta.
LEGACY_UNITS = """
CREATE TABLE units (
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
    seq         INTEGER NOT NULL
)
"""

LEGACY_ROWS = [  # id, kind, deps, state, attempts, wall_s, seq
    ("train/a", "train", [], "done", 1, 3.5, 0),
    ("train/b", "train", [], "done", 2, 4.0, 1),
    ("evaluate/a/noise", "evaluate", ["train/a"], "pending", 0, None, 2),
    ("evaluate/b/noise", "evaluate", ["train/b"], "failed", 1, None, 3),
]


def _sql(path, query, args=()):
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query, args).fetchall()


def _user_version(path) -> int:
    return _sql(path, "PRAGMA user_version")[0][0]


def _columns(path) -> list[str]:
    return [row[1] for row in _sql(path, "PRAGMA table_info(units)")]


def _tables(path) -> set[str]:
    return {name for (name,) in _sql(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def _dump(path) -> list[tuple]:
    """Every row of every table, for 'nothing changed' checks."""
    out = []
    for table in sorted(_tables(path)):
        out.append((table, sorted(_sql(path, f"SELECT * FROM {table}"), key=repr)))
    return out


def _make_legacy(path, with_meta: bool = False):
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(LEGACY_UNITS)
        for uid, kind, deps, state, attempts, wall, seq in LEGACY_ROWS:
            db.execute("INSERT INTO units (id, kind, payload, deps, state, attempts, wall_s, error, seq) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (uid, kind, json.dumps({"u": uid}), json.dumps(deps), state, attempts, wall,
                        "boom" if state == "failed" else None, seq))
        if with_meta:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT INTO meta VALUES ('k', 'v')")
    return path


def _planned(fp: str = "fp") -> list[Unit]:
    return [Unit(uid, kind, {"u": uid}, tuple(deps), f"{fp}:{uid}")
            for uid, kind, deps, *_ in LEGACY_ROWS]


# ---- basics -------------------------------------------------------------------


def test_new_file_gets_current_schema(tmp_path):
    path = tmp_path / "r.sqlite"
    reg = Registry(path)
    assert _user_version(path) == SCHEMA_VERSION == 2
    assert "fingerprint" in _columns(path)
    assert {"units", "meta"} <= _tables(path)
    assert reg.units() == [] and reg.states() == {}
    assert _sql(path, "PRAGMA journal_mode")[0][0] == "wal"


def test_empty_file_gets_current_schema(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"")
    Registry(path)
    assert _user_version(path) == SCHEMA_VERSION
    assert "fingerprint" in _columns(path)


def test_plan_added_reset_removed(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    a, b, c = Unit("a", "train", {"x": 1}, (), "fa"), Unit("b", "train", {}, (), "fb"), Unit("c", "train", {}, (), "fc")
    assert reg.plan([a, b]) == {"added": ["a", "b"], "reset": [], "adopted": [], "removed": []}
    reg.claim("a"), reg.finish("a", 1.0)
    reg.claim("b"), reg.finish("b", 1.0)
    assert reg.plan([a, b]) == {"added": [], "reset": [], "adopted": [], "removed": []}
    assert reg.states() == {"a": "done", "b": "done"}
    b2 = Unit("b", "train", {"y": 2}, (), "fb2")
    changes = reg.plan([c, b2])
    assert changes == {"added": ["c"], "reset": ["b"], "adopted": [], "removed": ["a"]}
    assert reg.states() == {"c": "pending", "b": "pending"}  # plan order
    assert reg.units() == [c, b2]


def test_ready_respects_deps(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    units = [Unit("t", "train", fingerprint="1"), Unit("e", "evaluate", deps=("t",), fingerprint="2"),
             Unit("m", "measures", deps=("t", "e"), fingerprint="3")]
    reg.plan(units)
    assert [u.id for u in reg.ready()] == ["t"]
    reg.claim("t")
    assert reg.ready() == []
    reg.finish("t", 0.5)
    assert [u.id for u in reg.ready()] == ["e"]
    reg.claim("e"), reg.finish("e", 0.1)
    assert [u.id for u in reg.ready()] == ["m"]


def test_claim_finish_fail_recover(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    reg.plan([Unit("a", "train", fingerprint="1"), Unit("b", "train", fingerprint="2"),
              Unit("c", "train", fingerprint="3")])
    reg.claim("a"), reg.claim("b"), reg.claim("c")
    reg.finish("a", 2.0)
    reg.fail("b", "Traceback: boom")
    assert reg.states() == {"a": "done", "b": "failed", "c": "running"}
    table = reg.table().set_index("id")
    assert table.loc["a", "wall_s"] == 2.0 and table.loc["b", "error"] == "Traceback: boom"
    assert list(table["attempts"]) == [1, 1, 1]
    assert reg.recover() == 2
    assert reg.states() == {"a": "done", "b": "pending", "c": "pending"}
    reg.claim("b")
    assert reg.table().set_index("id").loc["b", "attempts"] == 2
    assert reg.units("done") == [Unit("a", "train", fingerprint="1")]


def test_meta(tmp_path):
    reg = Registry(tmp_path / "r.sqlite")
    assert reg.get_meta("x") is None
    reg.set_meta("x", "1")
    reg.set_meta("x", "2")
    assert Registry(tmp_path / "r.sqlite").get_meta("x") == "2"


# ---- migration from the legacy layout (version 1) -------------------------------


@pytest.mark.parametrize("with_meta", [False, True])
def test_legacy_file_is_migrated_in_place(tmp_path, with_meta):
    path = _make_legacy(tmp_path / "r.sqlite", with_meta)
    assert _user_version(path) == 0 and "fingerprint" not in _columns(path)
    reg = Registry(path)
    assert _user_version(path) == SCHEMA_VERSION
    assert _columns(path)[-1] == "fingerprint" and "meta" in _tables(path)
    assert reg.states() == {uid: state for uid, _, _, state, *_ in LEGACY_ROWS}
    assert [u.fingerprint for u in reg.units()] == [""] * len(LEGACY_ROWS)
    assert [u.deps for u in reg.units()] == [tuple(r[2]) for r in LEGACY_ROWS]
    table = reg.table().set_index("id")
    assert table.loc["train/b", "attempts"] == 2 and table.loc["train/a", "wall_s"] == 3.5
    assert table.loc["evaluate/b/noise", "error"] == "boom"
    assert reg.get_meta("k") == ("v" if with_meta else None)
    reg.set_meta("k", "w")
    assert reg.get_meta("k") == "w"


def test_legacy_file_stamped_version_1_is_migrated(tmp_path):
    path = _make_legacy(tmp_path / "r.sqlite")
    _sql(path, "PRAGMA user_version = 1")
    Registry(path)
    assert _user_version(path) == SCHEMA_VERSION and "fingerprint" in _columns(path)


def test_migration_is_idempotent(tmp_path):
    path = _make_legacy(tmp_path / "r.sqlite")
    Registry(path)
    before = _dump(path), _columns(path), _user_version(path)
    reg = Registry(path)
    Registry(path)
    assert (_dump(path), _columns(path), _user_version(path)) == before
    assert reg.states()["train/a"] == "done"


def test_plan_adopts_unknown_fingerprints(tmp_path):
    path = _make_legacy(tmp_path / "r.sqlite")
    reg = Registry(path)
    changes = reg.plan(_planned(), adopt_unknown=True)
    assert changes == {"added": [], "reset": [], "adopted": [r[0] for r in LEGACY_ROWS], "removed": []}
    assert reg.states() == {uid: state for uid, _, _, state, *_ in LEGACY_ROWS}  # done stays done
    assert reg.units() == _planned()
    assert reg.table().set_index("id").loc["evaluate/b/noise", "error"] == "boom"
    # adopted fingerprints are now known: a later change of config resets as usual
    assert reg.plan(_planned(), adopt_unknown=True) == {"added": [], "reset": [], "adopted": [], "removed": []}
    changed = reg.plan(_planned("fp2"), adopt_unknown=True)
    assert changed["reset"] == [r[0] for r in LEGACY_ROWS] and changed["adopted"] == []
    assert set(reg.states().values()) == {"pending"}


def test_plan_without_adopt_resets_unknown_fingerprints(tmp_path):
    reg = Registry(_make_legacy(tmp_path / "r.sqlite"))
    new = Unit("measures/a", "measures", {}, ("train/a",), "fp:m")
    changes = reg.plan([*_planned()[:3], new])
    assert changes == {"added": ["measures/a"], "reset": [r[0] for r in LEGACY_ROWS[:3]], "adopted": [],
                       "removed": ["evaluate/b/noise"]}
    assert reg.states() == {"train/a": "pending", "train/b": "pending", "evaluate/a/noise": "pending",
                            "measures/a": "pending"}
    assert [u.fingerprint for u in reg.units()] == ["fp:train/a", "fp:train/b", "fp:evaluate/a/noise", "fp:m"]


def test_adopt_mixes_with_added_and_removed(tmp_path):
    reg = Registry(_make_legacy(tmp_path / "r.sqlite"))
    new = Unit("train/c", "train", {}, (), "fp:c")
    changes = reg.plan([*_planned()[:2], new], adopt_unknown=True)
    assert changes == {"added": ["train/c"], "reset": [], "adopted": ["train/a", "train/b"],
                       "removed": ["evaluate/a/noise", "evaluate/b/noise"]}
    assert reg.states() == {"train/a": "done", "train/b": "done", "train/c": "pending"}


def test_current_layout_with_user_version_0_is_only_stamped(tmp_path):
    path = tmp_path / "r.sqlite"
    with closing(sqlite3.connect(path)) as db, db:  # what the code before versioning wrote
        db.executescript(registry_mod._SCHEMA)
        db.execute("INSERT INTO units (id, kind, payload, deps, state, seq, fingerprint) "
                   "VALUES ('a', 'train', '{}', '[]', 'done', 0, 'fa')")
        db.execute("INSERT INTO meta VALUES ('k', 'v')")
    before = _dump(path), _columns(path)
    assert _user_version(path) == 0
    reg = Registry(path)
    assert _user_version(path) == SCHEMA_VERSION
    assert (_dump(path), _columns(path)) == before
    assert reg.plan([Unit("a", "train", fingerprint="fa")]) == {"added": [], "reset": [], "adopted": [],
                                                                 "removed": []}
    assert reg.states() == {"a": "done"}


def test_failed_migration_leaves_file_unchanged(tmp_path, monkeypatch):
    path = _make_legacy(tmp_path / "r.sqlite")
    before = _dump(path), _columns(path), _tables(path)
    real = registry_mod._MIGRATIONS[0]

    def half_then_crash(db):
        real(db)  # the column and meta table are added ...
        db.execute("UPDATE units SET state = 'pending'")
        raise ValueError("disk on fire")  # ... and then the step fails

    monkeypatch.setattr(registry_mod, "_MIGRATIONS", [half_then_crash])
    with pytest.raises(RegistryError, match="from schema version 1 to 2 failed") as info:
        Registry(path)
    assert str(path) in str(info.value) and isinstance(info.value.__cause__, ValueError)
    assert _user_version(path) == 0
    assert (_dump(path), _columns(path), _tables(path)) == before
    monkeypatch.undo()  # the real migration still works on the untouched file
    reg = Registry(path)
    assert _user_version(path) == SCHEMA_VERSION
    assert reg.states()["train/a"] == "done"


def test_failed_migration_of_version_1_file_keeps_version_1(tmp_path, monkeypatch):
    path = _make_legacy(tmp_path / "r.sqlite")
    _sql(path, "PRAGMA user_version = 1")
    monkeypatch.setattr(registry_mod, "_MIGRATIONS", [lambda db: (_ for _ in ()).throw(OSError("nope"))])
    with pytest.raises(RegistryError):
        Registry(path)
    assert _user_version(path) == 1 and "fingerprint" not in _columns(path)


# ---- files that must be refused -------------------------------------------------


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    Registry(path).plan([Unit("a", "train", fingerprint="x")])
    _sql(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes(), _dump(path)
    with pytest.raises(RegistryError, match="newer entrolab") as info:
        Registry(path)
    assert str(path) in str(info.value)
    assert (path.read_bytes(), _dump(path)) == before
    assert _user_version(path) == SCHEMA_VERSION + 1


def test_newer_version_in_rollback_journal_mode_is_left_alone(tmp_path):
    path = tmp_path / "r.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE units (id TEXT PRIMARY KEY, whatever BLOB)")
        db.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="version 99"):
        Registry(path)
    assert path.read_bytes() == before  # not even switched to WAL
    assert _sql(path, "PRAGMA journal_mode")[0][0] == "delete"


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    garbage = b"this is not a database, it is a shopping list\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(RegistryError, match="not an entrolab registry") as info:
        Registry(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == garbage


def test_other_database_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE customers (name TEXT)")
        db.execute("INSERT INTO customers VALUES ('ada')")
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="no units table") as info:
        Registry(path)
    assert str(path) in str(info.value) and "customers" in str(info.value)
    assert path.read_bytes() == before


def test_foreign_units_table_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE units (name TEXT, factor REAL)")
    with pytest.raises(RegistryError, match="lacks the columns"):
        Registry(path)
    assert _columns(path) == ["name", "factor"]


def test_registry_error_is_runtime_error():
    assert issubclass(RegistryError, RuntimeError)


def test_concurrent_opens_migrate_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = _make_legacy(tmp_path / "r.sqlite")
    with ThreadPoolExecutor(4) as pool:
        regs = list(pool.map(lambda _: Registry(path), range(8)))
    assert _user_version(path) == SCHEMA_VERSION and _columns(path).count("fingerprint") == 1
    assert regs[0].states()["train/b"] == "done"

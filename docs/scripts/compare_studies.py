"""Compare the tables of two study directories, bit for bit (for refactors that must change nothing).

    .venv/bin/python docs/scripts/compare_studies.py runs/before runs/after

For every ``tables/*.parquet`` in either directory: identical (same columns,
dtypes, and every value equal to the last bit, NaN where NaN), or the columns
that differ and by how much. Columns that measure wall-clock time (their
names contain "seconds", "wall" or "time_s") differ between any two runs and
are listed apart, not counted as differences. Columns present in only one of the two (a newer
entrolab logging more) are listed, and the tables compared on the columns they share. Exit
status 1 if any shared value differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

TIMING = ("seconds", "wall", "time_s", "sps")


def _is_timing(col: str) -> bool:
    return any(t in col for t in TIMING)


def compare(a: Path, b: Path) -> tuple[bool, list[str]]:
    lines, same = [], True
    names = sorted({p.name for p in (a / "tables").glob("*.parquet")} | {p.name for p in (b / "tables").glob("*.parquet")})
    for name in names:
        pa, pb = a / "tables" / name, b / "tables" / name
        if not (pa.exists() and pb.exists()):
            lines.append(f"{name}: only in {'the first' if pa.exists() else 'the second'}")
            same = False
            continue
        x, y = pd.read_parquet(pa), pd.read_parquet(pb)
        if len(x) != len(y):
            lines.append(f"{name}: {len(x)} vs {len(y)} rows")
            same = False
            continue
        shared = [c for c in x.columns if c in y.columns]
        extra = ([f"-{c}" for c in x.columns if c not in y.columns] + [f"+{c}" for c in y.columns if c not in x.columns])
        diff, timing = [], []
        for col in shared:
            u, v = x[col], y[col]
            if u.dtype != v.dtype:
                diff.append(f"{col} (dtype {u.dtype} vs {v.dtype})")
                continue
            if pd.api.types.is_float_dtype(u):
                uu, vv = u.to_numpy(), v.to_numpy()
                equal = np.array_equal(uu.view(np.uint64 if uu.dtype == np.float64 else np.uint32),
                                       vv.view(np.uint64 if vv.dtype == np.float64 else np.uint32))
                detail = f"max |diff| {np.nanmax(np.abs(uu - vv)):.3g}" if not equal else ""
            else:
                equal = u.astype(str).equals(v.astype(str))
                detail = ""
            if not equal:
                (timing if _is_timing(col) else diff).append(f"{col} {detail}".strip())
        if diff:
            same = False
            lines.append(f"{name}: {len(x)} rows, DIFFERENT in {diff}")
        else:
            lines.append(f"{name}: {len(x)} rows x {len(shared)} shared columns, identical to the bit"
                         + (f" (wall-clock columns differ, as expected: {timing})" if timing else "")
                         + (f"; columns only in one: {extra}" if extra else ""))
    return same, lines


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    same, lines = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(lines))
    print("ALL SHARED VALUES IDENTICAL" if same else "TABLES DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()

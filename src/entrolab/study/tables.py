"""The tables of a study: built by its kind from the published unit outputs, read by everyone.

``STUDY_DIR/tables/NAME.parquet``, tidy (one row per observation), opened
directly by pandas, pyarrow or DuckDB. `build_tables` asks the study's kind to
rebuild them (a pure function of the outputs of the units the config plans);
`load_tables` reads them back, e.g. for the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from entrolab.study.config import StudyConfigBase, read_config
from entrolab.study.kinds import get_kind

TABLES_DIR = "tables"


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a table atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


def concat_parquet(paths: Iterable[Path]) -> pd.DataFrame:
    """The rows of several Parquet files in one table (empty if there are none)."""
    frames = [pd.read_parquet(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def build_tables(study_dir: str | Path, config: StudyConfigBase | None = None,
                 num_resamples: int | None = None) -> dict[str, pd.DataFrame]:
    """Rebuild ``tables/*.parquet`` of a study whose units are all done; returns them."""
    study_dir = Path(study_dir)
    config = config or read_config(study_dir)
    (study_dir / TABLES_DIR).mkdir(exist_ok=True)
    return dict(get_kind(config.kind).build_tables(study_dir, config, num_resamples))


def load_tables(study_dir: str | Path, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """The stored tables of a study (by default every table its kind writes), skipping absent ones."""
    tables_dir = Path(study_dir) / TABLES_DIR
    if names is None:
        names = get_kind(read_config(study_dir).kind).tables
    return {name: pd.read_parquet(tables_dir / f"{name}.parquet") for name in names
            if (tables_dir / f"{name}.parquet").exists()}

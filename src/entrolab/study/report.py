"""The report of a finished study, whatever its kind.

    write_report("runs/lorenz-quick")   # -> runs/lorenz-quick/report/index.html

The study's kind turns its stored tables into a title and sections
(`StudyKind.report`); `entrolab.report.document` renders them to
``report/index.html`` and ``report/report.md`` with the figures under
``report/figures/``. Nothing is recomputed from checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from entrolab.report.document import FIGURES_DIR, REPORT_DIR, write_document
from entrolab.report.figures import style
from entrolab.study.config import read_config
from entrolab.study.kinds import get_kind
from entrolab.study.tables import load_tables


def write_report(study_dir: str | Path) -> Path:
    """Write the report of a study whose tables are built; returns the path of index.html."""
    study_dir = Path(study_dir)
    config = read_config(study_dir)
    kind = get_kind(config.kind)
    tables = load_tables(study_dir, kind.tables)
    out = study_dir / REPORT_DIR
    fig_dir = out / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    for stale in fig_dir.glob("*.png"):  # figures of a previous report that this one may not redraw
        stale.unlink()
    with style():
        title, sections = kind.report(config, tables, fig_dir)
    return write_document(out, title, sections)

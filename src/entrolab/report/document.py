"""The report document: sections of paragraphs, tables and figures, rendered to HTML and markdown.

Every study kind builds its report as a list of `Section`s from its stored
tables (never from checkpoints, agents or environments, so a report can be
rebuilt anywhere the tables are); `write_document` renders both documents from
that one list, so the HTML and the markdown show the same numbers to the digit:

    STUDY_DIR/report/index.html     opens in a browser without a server (inline CSS)
    STUDY_DIR/report/report.md      the same sections in markdown
    STUDY_DIR/report/figures/*.png  the figures both link to

A paragraph starting with "Note: " is rendered as a note.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from entrolab.stats import bootstrap_ci

REPORT_DIR = "report"
FIGURES_DIR = "figures"


# ---------------------------------------------------------------------------
# Document model: rendered to both HTML and markdown
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """A table of preformatted cells (both renderings show these strings)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG under ``report/figures/`` and its caption."""

    name: str
    caption: str


@dataclass(frozen=True)
class Details:
    """A collapsible table in HTML; the markdown shows `markdown` instead."""

    summary: str
    table: Table
    markdown: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # str (a paragraph), Table, Figure, Details

    def note(self, text: str) -> None:
        self.blocks.append(f"Note: {text}")


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def fmt(x, digits: int = 4) -> str:
    """A number to `digits` significant digits; "n/a" for NaN / None / inf. |x| < 1e-12 shows as "0":
    no quantity of these reports is that small, and round-off (a granulated tau of -2.776e-17) is
    not a number for people."""
    if x is None:
        return "n/a"
    x = float(x)
    if abs(x) < 1e-12:
        return "0"
    return f"{x:.{digits}g}" if math.isfinite(x) else "n/a"


def fmt_plain(x, digits: int = 4, scale=None) -> str:
    """A number to `digits` significant digits, trailing zeros dropped, without an exponent where
    one is not needed (1e-3 <= |x| < 1e5: "12346", "0.01235", "0.1"; else "1.235e-5"); "n/a"
    for NaN / None / inf.

    With `scale` (the size of the quantities x is a difference of), |x| <= 1e-6 |scale| is
    float32 round-off and shows as "0", not as "-2.776e-17".
    """
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    x = float(x)
    if x == 0.0 or (scale is not None and math.isfinite(float(scale)) and abs(x) <= 1e-6 * abs(float(scale))):
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if -3 <= magnitude < 5:
        text = f"{x:.{max(0, digits - 1 - magnitude)}f}"
        if math.floor(math.log10(abs(float(text)))) > magnitude:
            text = f"{x:.{max(0, digits - 2 - magnitude)}f}"  # rounding carried into the next digit
        return _strip_zeros(text)
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{_strip_zeros(mantissa)}e{int(exponent)}"


def _strip_zeros(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_ci(estimate, low, high) -> str:
    if not math.isfinite(float(estimate)):
        return "n/a"
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def mean_ci(values, num_resamples: int) -> str:
    """Mean [95% bootstrap CI] over the finite values, "n/a" if there are none."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "n/a"
    return fmt_ci(*bootstrap_ci(x, np.mean, num_resamples=num_resamples, rng=0))


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } .note { color: #8a5300; font-size: 0.9em; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _html_table(t: Table) -> str:
    e = html.escape
    caption = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
    head = "".join(f"<th>{e(c)}</th>" for c in t.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table>{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def render_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Table):
                parts.append(_html_table(b))
            elif isinstance(b, Figure):
                src = f"{FIGURES_DIR}/{b.name}"
                parts.append(f"<figure><img src=\"{e(src)}\" alt=\"{e(b.caption)}\">"
                             f"<figcaption>{e(b.caption)}</figcaption></figure>")
            elif isinstance(b, Details):
                parts.append(f"<details><summary>{e(b.summary)}</summary>{_html_table(b.table)}</details>")
            elif b.startswith("Note: "):
                parts.append(f"<p class=\"note\">{e(b)}</p>")
            else:
                parts.append(f"<p>{e(b)}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    lines = [f"**{t.caption}**", ""] if t.caption else []
    lines.append("| " + " | ".join(map(_md_cell, t.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in t.rows]
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}"]
    for s in sections:
        parts.append(f"## {s.title}")
        for b in s.blocks:
            if isinstance(b, Table):
                parts.append(_md_table(b))
            elif isinstance(b, Figure):
                parts.append(f"![{b.caption}]({FIGURES_DIR}/{b.name})")
            elif isinstance(b, Details):
                parts.append(b.markdown)
            else:
                parts.append(f"*{b}*" if b.startswith("Note: ") else b)
    return "\n\n".join(parts) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (a reader never sees half a report)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_document(out: str | Path, title: str, sections: list[Section]) -> Path:
    """``out/report.md`` and ``out/index.html`` of `sections`; returns the path of index.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.md", render_markdown(title, sections))
    index = out / "index.html"
    write_text(index, render_html(title, sections))
    return index

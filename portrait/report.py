"""report.html: a self-contained page (inline CSS and PNG plots) that reads without code."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from training.figures import png_base64

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#1b1f24}
h1{font-size:1.6rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.3rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
figure{margin:0;background:#f6f8fa;border-radius:6px;padding:.5rem}figure img{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#57606a}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
.note{color:#57606a;font-size:.9rem}.bad{color:#b42318}
"""


@dataclass
class Section:
    """One titled part of the report: paragraphs, tables and figures in order."""

    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, body: str, *, css: str = "") -> Section:
        self.parts.append(f'<p class="{css}">{html.escape(body)}</p>')
        return self

    def table(
        self,
        frame: pd.DataFrame,
        *,
        caption: str = "",
        index: bool = False,
        floatfmt: str = "{:,.3f}",
    ) -> Section:
        head = f"<h3>{html.escape(caption)}</h3>" if caption else ""
        body = frame.to_html(index=index, border=0, float_format=floatfmt.format, na_rep="–")
        self.parts.append(head + body)
        return self

    def figures(self, *figs: tuple[Any, str]) -> Section:
        items = "".join(
            f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,{png_base64(fig)}"><figcaption>'
            f"{html.escape(cap)}</figcaption></figure>"
            for fig, cap in figs
        )
        self.parts.append(f'<div class="grid">{items}</div>')
        return self


def render(sections: list[Section], *, title: str, subtitle: str) -> str:
    """The whole page as HTML text, with a table of contents."""
    toc = "".join(
        f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)
    )
    body = "".join(
        f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
        for i, s in enumerate(sections)
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">{html.escape(subtitle)}</p><nav><ol>{toc}</ol></nav>{body}</body></html>'
    )


def write_report(sections: list[Section], path: Path, *, title: str, subtitle: str) -> Path:
    """Write report.html and return its path."""
    path.write_text(render(sections, title=title, subtitle=subtitle), encoding="utf-8")
    return path


def report_words(path: Path) -> str:
    """The words a reader of report.html sees: embedded images and tags left out."""
    page = re.sub(r'src="data:[^"]*"', "", Path(path).read_text(encoding="utf-8"))
    return re.sub(r"<[^>]+>", " ", page)

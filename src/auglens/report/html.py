"""The report page: one self-contained HTML file (figures as base64 PNG data URIs, inline CSS, no fetches).

The page carries a tiny inline self-check: on ``load`` it writes, into the hidden ``<pre id="selfcheck">``,
a JSON summary (images on the page, images that failed to decode, expected sections found, JavaScript
errors and ``console.error`` calls). Headless browsers can dump the DOM and read it; people never see it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FigureBlock", "PreBlock", "Section", "TableBlock", "TextBlock", "format_frame", "render_page"]


@dataclass
class FigureBlock:
    """A figure: ``png`` bytes embedded as a data URI; ``name`` is its file stem under ``figures/``."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass
class TableBlock:
    """A table: ``frame`` is shown as is (format it first with :func:`format_frame`); ``name`` its CSV stem."""

    name: str
    title: str
    caption: str
    frame: pd.DataFrame
    index: bool = False


@dataclass
class TextBlock:
    """A paragraph of plain text (escaped)."""

    text: str


@dataclass
class PreBlock:
    """Preformatted text (config, manifest), escaped."""

    title: str
    text: str


Block = FigureBlock | TableBlock | TextBlock | PreBlock


@dataclass
class Section:
    """A report section: ``id`` is its anchor (and what the self-check looks for); ``intro`` says how to read it."""

    id: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)


def format_frame(frame: pd.DataFrame, digits: int = 3, missing: str = "–") -> pd.DataFrame:
    """Floats to ``digits`` significant-looking decimals, NaN/None to ``missing``; other values as strings."""
    def cell(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return missing
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if isinstance(value, (float, np.floating)):
            v = float(value)
            return f"{v:.{digits}g}" if (v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 10**6)) else f"{v:.{digits}f}"
        return str(value)

    return frame.apply(lambda column: column.map(cell)) if not frame.empty else frame.astype(str)


_CSS = """
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d9d9d9; --accent: #0072B2; --bg: #ffffff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: var(--bg); }
header { padding: 24px 32px 12px; border-bottom: 1px solid var(--rule); }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 10px 32px; background: var(--panel); border-bottom: 1px solid var(--rule); font-size: 14px;
      display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 32px 48px; max-width: 1400px; }
section { margin-top: 28px; }
section section { margin-top: 18px; padding-left: 14px; border-left: 3px solid var(--panel); }
h2 { font-size: 21px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 17px; margin-bottom: 6px; }
h4 { font-size: 15px; margin: 14px 0 4px; }
p.intro { max-width: 75em; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); background: white; }
figcaption, .caption { color: var(--muted); font-size: 13.5px; max-width: 75em; }
.table-wrap { overflow-x: auto; margin: 6px 0 18px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--rule); text-align: left; white-space: nowrap; }
th { background: var(--panel); }
td.num, th.num { text-align: right; }
pre { background: var(--panel); padding: 10px 14px; overflow-x: auto; font-size: 12.5px; max-height: 40em; }
"""

# Collects JS errors / console.error from the first byte on, and on load records what rendered.
_SELFCHECK = """
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(t && t !== window && t.tagName ? "failed to load <" + t.tagName.toLowerCase() + "> " + (t.alt || "")
                                             : String(e.message));
  }, true);
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    var expected = JSON.parse(document.body.getAttribute("data-sections") || "[]");
    var found = expected.filter(function (id) { return document.getElementById(id) !== null; });
    document.getElementById("selfcheck").textContent = JSON.stringify({
      images: images.length, not_loaded: broken.length, not_loaded_alt: broken.map(function (i) { return i.alt; }),
      sections_expected: expected, sections_found: found, errors: errors });
  });
})();
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


_NUMBER = re.compile(r"^[-+−]?\.?\d")


def _table(frame: pd.DataFrame, index: bool) -> str:
    """HTML table of (already formatted) cells; columns whose every cell starts with a number (or is "–")
    are right-aligned (class "num") so that digits line up."""
    if index:
        frame = frame.reset_index()
    texts = [["–" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in frame[c]]
             for c in frame.columns]
    numeric = [any(t != "–" for t in col) and all(t == "–" or _NUMBER.match(t) for t in col) for col in texts]
    head = "".join(f'<th{" class=num" if num else ""}>{_e(c)}</th>' for c, num in zip(frame.columns, numeric))
    rows = []
    for r in range(len(frame)):
        cells = "".join(f'<td class="num">{_e(col[r])}</td>' if num else f"<td>{_e(col[r])}</td>"
                        for col, num in zip(texts, numeric))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _render_block(block: Block) -> str:
    if isinstance(block, FigureBlock):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="fig-{_e(block.name)}"><h4>{_e(block.title)}</h4>'
                f'<img src="data:image/png;base64,{data}" alt="{_e(block.title)}">'
                f"<figcaption>{_e(block.caption)} <em>(figures/{_e(block.name)}.png, .svg)</em></figcaption></figure>")
    if isinstance(block, TableBlock):
        return (f'<div id="table-{_e(block.name)}"><h4>{_e(block.title)}</h4>'
                f'<p class="caption">{_e(block.caption)} <em>(tables/{_e(block.name)}.csv)</em></p>'
                f'<div class="table-wrap">{_table(block.frame, block.index)}</div></div>')
    if isinstance(block, TextBlock):
        return f"<p>{_e(block.text)}</p>"
    if isinstance(block, PreBlock):
        return f"<h4>{_e(block.title)}</h4><pre>{_e(block.text)}</pre>"
    raise TypeError(f"unknown block type {type(block).__name__}")


def _render_section(section: Section, level: int) -> str:
    parts = [f'<section id="{_e(section.id)}"><h{level}>{_e(section.title)}</h{level}>']
    if section.intro:
        parts.append(f'<p class="intro">{_e(section.intro)}</p>')
    parts += [_render_block(block) for block in section.blocks]
    parts += [_render_section(child, min(level + 1, 4)) for child in section.children]
    parts.append("</section>")
    return "\n".join(parts)


def _all_ids(sections: Sequence[Section]) -> list[str]:
    ids = []
    for section in sections:
        ids.append(section.id)
        ids += _all_ids(section.children)
    return ids


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The complete HTML document for ``sections`` (top-level ones get a navigation link)."""
    nav = "".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections)
    body = "\n".join(_render_section(s, 2) for s in sections)
    expected = _e(json.dumps(_all_ids(sections)))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
<script>{_SELFCHECK}</script>
</head>
<body data-sections="{expected}">
<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<pre id="selfcheck" hidden></pre>
</body>
</html>
"""

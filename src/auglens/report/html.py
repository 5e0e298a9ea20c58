"""The report page: one self-contained HTML file (figures as base64 PNG data URIs, inline CSS and script).

Tables sort by a click on a column header and filter by the text typed above them; file names are links to
the CSV/PNG/SVG files beside the page; the per-image CAM browser loads its images (files under
``report/browser/``) only for the page of results on screen. Nothing is fetched from elsewhere.

Every table, and the CAM browser's image strips, sit in a box as wide as the page at most, which scrolls
sideways what is wider (a table of many pairs or metrics, a strip of many models): the page itself never
grows past the window.

The page carries a tiny inline self-check: on ``load`` it writes, into the hidden ``<pre id="selfcheck">``,
a JSON summary (images on the page, images that failed to decode, expected sections found, elements that
reach past the page's right edge outside a scrolling box, JavaScript errors and ``console.error`` calls).
Headless browsers can dump the DOM and read it; people never see it.
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

__all__ = ["BannerBlock", "BrowserBlock", "FigureBlock", "PreBlock", "RawBlock", "Section", "TableBlock", "TextBlock",
           "format_frame", "render_page"]


@dataclass
class FigureBlock:
    """A figure: ``png`` bytes embedded as a data URI; ``name`` is its file stem under ``figures/``."""

    name: str
    title: str
    caption: str
    png: bytes
    links: tuple[str, ...] = ()  # files to link, relative to the page (default: figures/<name>.png and .svg)


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


@dataclass
class BannerBlock:
    """A highlighted warning (e.g. a model at chance level): a title and one line per problem, escaped."""

    title: str
    lines: list[str]


@dataclass
class RawBlock:
    """HTML built by the report itself (every user-derived string in it already escaped with :func:`escape`)."""

    html: str


@dataclass
class BrowserBlock:
    """The per-image CAM browser: ``data`` (JSON-serialisable) describes images, models and metrics; the
    page's script renders one page of cards at a time, loading each card's image (``data["images"][i]["src"]``)
    only when its page is shown."""

    data: dict


Block = FigureBlock | TableBlock | TextBlock | PreBlock | BannerBlock | RawBlock | BrowserBlock


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
header p { margin: 0; color: var(--muted); overflow-wrap: anywhere; }
nav { padding: 10px 32px; background: var(--panel); border-bottom: 1px solid var(--rule); font-size: 14px;
      display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 32px 48px; max-width: 1400px; min-width: 0; }
section { margin-top: 28px; }
section section { margin-top: 18px; padding-left: 14px; border-left: 3px solid var(--panel); }
h2 { font-size: 21px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 17px; margin-bottom: 6px; }
h4 { font-size: 15px; margin: 14px 0 4px; }
p.intro { max-width: 75em; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); background: white; }
figcaption, .caption { color: var(--muted); font-size: 13.5px; max-width: 75em; }
/* Anything wider than the page (a table of many columns, a strip of many CAMs) scrolls inside its own box,
   never the page: the box is at most as wide as its parent, the content scrolls within it. */
.table-wrap, .scroll-x { overflow-x: auto; max-width: 100%; }
.table-wrap { margin: 6px 0 18px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--rule); text-align: left; white-space: nowrap; }
th { background: var(--panel); }
td.num, th.num { text-align: right; }
pre { background: var(--panel); padding: 10px 14px; overflow-x: auto; font-size: 12.5px; max-height: 40em; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: #b0b0b0; font-size: 11px; }
th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--accent); }
th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--accent); }
input.table-filter { font: inherit; font-size: 13px; padding: 2px 6px; margin: 2px 0 4px; width: 18em; }
.banner { border: 2px solid #D55E00; background: #fff3ec; padding: 10px 16px; margin: 16px 0; }
.banner h3 { margin: 0 0 6px; color: #a33f00; }
.banner ul { margin: 0; padding-left: 20px; }
.findings { background: var(--panel); padding: 10px 16px; border-left: 4px solid var(--accent); }
.findings li { margin: 3px 0; }
.browser-controls { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin: 8px 0; font-size: 14px; }
.browser-controls select, .browser-controls button { font: inherit; font-size: 13px; }
.browser-cards { display: flex; flex-direction: column; gap: 12px; }
.browser-card { border: 1px solid var(--rule); padding: 8px 10px; min-width: 0; }
.browser-card img { image-rendering: pixelated; height: 96px; width: auto; display: block; margin: 4px 0; }
.browser-card table { font-size: 12.5px; }
.browser-card .table-wrap { margin: 4px 0 0; }
td.ok { color: #007a55; } td.wrong { color: #c24000; }
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
    var browser = document.getElementById("browser-cards");
    var shown = browser ? Array.prototype.slice.call(browser.querySelectorAll("img")) : [];
    var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    var expected = JSON.parse(document.body.getAttribute("data-sections") || "[]");
    var found = expected.filter(function (id) { return document.getElementById(id) !== null; });
    // Elements reaching past the page's right edge outside any scrolling box: they would widen the page.
    var width = document.documentElement.clientWidth, overflowing = [];
    Array.prototype.forEach.call(document.body.querySelectorAll("*"), function (el) {
      var box = el.getBoundingClientRect();
      if (box.width === 0 || box.right <= width + 0.5) { return; }
      for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== "visible") { return; }
      }
      overflowing.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                       (el.className ? "." + String(el.className).split(" ").join(".") : ""));
    });
    document.getElementById("selfcheck").textContent = JSON.stringify({
      images: images.length, not_loaded: broken.length, not_loaded_alt: broken.map(function (i) { return i.alt; }),
      sections_expected: expected, sections_found: found, errors: errors,
      overflowing: overflowing.slice(0, 20), page_width: width,
      browser_images: shown.length,
      browser_images_loaded: shown.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length });
  });
})();
"""

# Sortable, filterable tables and the CAM browser. Runs at the end of <body>, before the load event, so the
# browser's first page of images is part of the page load (and of the self-check).
_SCRIPT = """
(function () {
  function each(list, f) { Array.prototype.forEach.call(list, f); }
  function value(cell, numeric) {
    var text = cell.textContent.trim();
    if (!numeric) { return text.toLowerCase(); }
    var v = parseFloat(text.replace("\\u2212", "-"));
    return isNaN(v) ? null : v;
  }
  function sortBy(table, column, th) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.classList.contains("num");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[column], numeric), y = value(b.cells[column], numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }  // missing values last, both ways
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    each(table.tHead.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.forEach(function (row) { body.appendChild(row); });
  }
  each(document.querySelectorAll("table.sortable"), function (table) {
    each(table.tHead.rows[0].cells, function (th, column) {
      th.classList.add("sortable");
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, column, th); });
    });
  });
  each(document.querySelectorAll("input.table-filter"), function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () {
      var query = input.value.toLowerCase();
      each(table.tBodies[0].rows, function (row) {
        row.hidden = query !== "" && row.textContent.toLowerCase().indexOf(query) < 0;
      });
    });
  });

  var source = document.getElementById("browser-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var controls = {};
  each(["class", "correct", "model", "metric", "order", "min", "max"], function (name) {
    controls[name] = document.getElementById("browser-" + name);
  });
  var pageLabel = document.getElementById("browser-page");
  var cards = document.getElementById("browser-cards");
  var page = 0;
  function text(tag, content, cls) {
    var el = document.createElement(tag);
    el.textContent = content;
    if (cls) { el.className = cls; }
    return el;
  }
  function scrolling(cls, child) {  // a box that scrolls what is wider than the page (many models, metrics)
    var box = document.createElement("div");
    box.className = cls;
    box.appendChild(child);
    return box;
  }
  function format(v) { return v === null ? "\\u2013" : (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : v.toFixed(3)); }
  function selected() {
    var cls = controls["class"].value, correct = controls.correct.value;
    var model = parseInt(controls.model.value, 10), metric = controls.metric.value;
    var column = data.metrics.indexOf(metric);
    var low = parseFloat(controls.min.value), high = parseFloat(controls.max.value);
    var out = data.images.filter(function (image) {
      if (!isNaN(low) || !isNaN(high)) {
        var v = image.values[model - 1][column];
        if (v === null || (!isNaN(low) && v < low) || (!isNaN(high) && v > high)) { return false; }
      }
      if (cls !== "" && image.label !== parseInt(cls, 10)) { return false; }
      var baseOk = image.preds[0] === image.label, modelOk = image.preds[model] === image.label;
      if (correct === "both" && !(baseOk && modelOk)) { return false; }
      if (correct === "baseline_only" && !(baseOk && !modelOk)) { return false; }
      if (correct === "model_only" && !(!baseOk && modelOk)) { return false; }
      if (correct === "neither" && (baseOk || modelOk)) { return false; }
      return true;
    });
    var order = controls.order.value;
    if (order !== "index" && model > 0) {
      out.sort(function (a, b) {
        var x = a.values[model - 1][column], y = b.values[model - 1][column];
        if (x === y) { return a.index - b.index; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        return order === "ascending" ? x - y : y - x;
      });
    }
    return out;
  }
  function render() {
    var images = selected();
    var pages = Math.max(1, Math.ceil(images.length / data.page_size));
    page = Math.min(page, pages - 1);
    pageLabel.textContent = images.length + " image(s), page " + (page + 1) + " of " + pages;
    while (cards.firstChild) { cards.removeChild(cards.firstChild); }
    images.slice(page * data.page_size, (page + 1) * data.page_size).forEach(function (image) {
      var card = document.createElement("div");
      card.className = "browser-card";
      card.appendChild(text("div", "image " + image.index + " \\u2014 label " + image.label + " (" +
                                   data.classes[image.label] + ")"));
      var img = document.createElement("img");
      img.src = image.src;  // created only for the page on screen: images load on demand
      img.alt = "image " + image.index + ": the image, then each model's CAM";
      card.appendChild(scrolling("scroll-x", img));
      card.appendChild(text("div", "panels: the image, then " + data.models.join(", "), "caption"));
      var table = document.createElement("table");
      var head = table.createTHead().insertRow();
      each(["model", "predicted"].concat(data.metrics), function (name) { head.appendChild(text("th", name)); });
      var body = table.createTBody();
      data.models.forEach(function (name, m) {
        var row = body.insertRow();
        var pred = image.preds[m];
        row.appendChild(text("td", name));
        row.appendChild(text("td", pred + " (" + data.classes[pred] + ") " + (pred === image.label ? "\\u2713" : "\\u2717"),
                             pred === image.label ? "ok" : "wrong"));
        data.metrics.forEach(function (metric, k) {
          row.appendChild(text("td", m === 0 ? "" : format(image.values[m - 1][k]), "num"));
        });
      });
      card.appendChild(scrolling("table-wrap", table));
      cards.appendChild(card);
    });
  }
  each(["class", "correct", "model", "metric", "order", "min", "max"], function (name) {
    controls[name].addEventListener("change", function () { page = 0; render(); });
  });
  document.getElementById("browser-prev").addEventListener("click", function () { page = Math.max(0, page - 1); render(); });
  document.getElementById("browser-next").addEventListener("click", function () { page += 1; render(); });
  render();
})();
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


escape = _e

#: Tables with more rows than this get a filter box.
_FILTER_ROWS = 8


_NUMBER = re.compile(r"^[-+−]?\.?\d")


def _table(frame: pd.DataFrame, index: bool, table_id: str) -> str:
    """HTML table of (already formatted) cells, sortable by a click on a header; columns whose every cell
    starts with a number (or is "–") are right-aligned and sort numerically (class "num")."""
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
    search = (f'<input class="table-filter" type="search" data-table="{_e(table_id)}" '
              f'placeholder="filter {len(frame)} rows" aria-label="filter rows">' if len(frame) > _FILTER_ROWS else "")
    return (f'{search}<table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _links(paths: Sequence[str]) -> str:
    return ", ".join(f'<a href="{_e(path)}">{_e(path)}</a>' for path in paths)


def _browser(data: dict) -> str:
    """The CAM browser's controls, an empty card list (filled by the page's script) and its data as JSON."""
    options = "".join(f'<option value="{i}">{i} ({_e(name)})</option>' for i, name in enumerate(data["classes"]))
    models = "".join(f'<option value="{m}">{_e(name)}</option>' for m, name in enumerate(data["models"]) if m > 0)
    metrics = "".join(f'<option value="{_e(name)}">{_e(name)}</option>' for name in data["metrics"])
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f"""<div class="browser-controls">
<label>class <select id="browser-class"><option value="">all</option>{options}</select></label>
<label>correct <select id="browser-correct"><option value="">any</option>
<option value="both">baseline and model</option><option value="baseline_only">baseline only</option>
<option value="model_only">model only</option><option value="neither">neither</option></select></label>
<label>model <select id="browser-model">{models}</select></label>
<label>metric <select id="browser-metric">{metrics}</select></label>
<label>from <input id="browser-min" type="number" step="any" size="6" aria-label="lowest metric value shown"></label>
<label>to <input id="browser-max" type="number" step="any" size="6" aria-label="highest metric value shown"></label>
<label>order <select id="browser-order"><option value="index">image index</option>
<option value="descending">metric, highest first</option><option value="ascending">metric, lowest first</option></select></label>
<button id="browser-prev" type="button">previous</button><button id="browser-next" type="button">next</button>
<span id="browser-page"></span>
</div>
<div id="browser-cards" class="browser-cards"></div>
<script type="application/json" id="browser-data">{payload}</script>"""


def _render_block(block: Block) -> str:
    if isinstance(block, FigureBlock):
        data = base64.b64encode(block.png).decode("ascii")
        links = block.links or (f"figures/{block.name}.png", f"figures/{block.name}.svg")
        return (f'<figure id="fig-{_e(block.name)}"><h4>{_e(block.title)}</h4>'
                f'<img src="data:image/png;base64,{data}" alt="{_e(block.title)}">'
                f"<figcaption>{_e(block.caption)} <em>({_links(links)})</em></figcaption></figure>")
    if isinstance(block, TableBlock):
        return (f'<div id="table-{_e(block.name)}"><h4>{_e(block.title)}</h4>'
                f'<p class="caption">{_e(block.caption)} <em>({_links([f"tables/{block.name}.csv"])})</em></p>'
                f'<div class="table-wrap">{_table(block.frame, block.index, f"t-{block.name}")}</div></div>')
    if isinstance(block, BannerBlock):
        items = "".join(f"<li>{_e(line)}</li>" for line in block.lines)
        return f'<div class="banner" role="alert"><h3>{_e(block.title)}</h3><ul>{items}</ul></div>'
    if isinstance(block, RawBlock):
        return block.html
    if isinstance(block, BrowserBlock):
        return _browser(block.data)
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
<script>{_SCRIPT}</script>
</body>
</html>
"""

"""Wide content scrolls inside its own box: a table of many columns never widens the report page."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

from auglens.report.html import _CSS, _SCRIPT, Section, TableBlock, render_page
from tests.report.test_report_browser import _chromium, _run

# A permutation-test-like table: long pair names, one column per metric, far wider than 1400 px.
_WIDE = pd.DataFrame({"pair": [f"augmentation_{i} – augmentation_{i + 1}_with_a_long_name" for i in range(6)],
                      **{f"metric_with_a_long_name_{m}": [f"0.0{i} (augmentation_{i})" for i in range(6)]
                         for m in range(16)}})


def _page() -> str:
    return render_page("wide", "a page with a wide table", [
        Section("permutation", "Permutation tests", "intro", [TableBlock("permutation_tests", "p", "caption", _WIDE)])])


def _rules(selector: str) -> dict[str, str]:
    """The declarations of the CSS rules whose selector list names ``selector``."""
    declarations = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", _CSS, flags=re.S)):
        if selector in [s.strip() for s in selectors.split(",")]:
            declarations.update(dict(tuple(part.strip() for part in d.split(":", 1))
                                     for d in body.split(";") if ":" in d))
    return declarations


def test_every_table_sits_in_a_scrolling_box_no_wider_than_its_parent():
    page = _page()
    tables = [m.start() for m in re.finditer(r"<table\b", page)]
    assert tables
    for start in tables:  # the nearest opening <div> before each table is its scrolling box
        div = page.rfind("<div", 0, start)
        assert page.startswith('<div class="table-wrap">', div), page[div:start]
    for selector in (".table-wrap", ".scroll-x"):
        rules = _rules(selector)
        assert rules.get("overflow-x") == "auto" and rules.get("max-width") == "100%", (selector, rules)
    # The CAM browser builds its cards' tables and image strips in the page's script: boxed there too.
    assert "appendChild(table)" not in _SCRIPT and "appendChild(img)" not in _SCRIPT
    assert 'scrolling("table-wrap", table)' in _SCRIPT and 'scrolling("scroll-x", img)' in _SCRIPT


def _selfcheck(page: str, tmp_path, width: int) -> dict:
    path = tmp_path / f"page-{width}.html"
    path.write_text(page, encoding="utf-8")
    dumped = _run(_chromium(), tmp_path / "profile", f"--window-size={width},900", "--virtual-time-budget=5000",
                  "--dump-dom", path.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    return json.loads(html.unescape(re.search(r'<pre id="selfcheck"[^>]*>(.*?)</pre>', dumped.stdout, re.S).group(1)))


@pytest.mark.parametrize("width", [1400, 800])
def test_a_wide_table_scrolls_in_its_box_in_headless_chromium(tmp_path, width):
    check = _selfcheck(_page(), tmp_path, width)
    assert check["errors"] == []
    assert 0 < check["page_width"] <= width and check["overflowing"] == []
    # The self-check does see a table that widens the page: the same page without the scrolling box.
    unboxed = _selfcheck(_page().replace('<div class="table-wrap">', "<div>"), tmp_path, width)
    assert any(name.startswith("table#t-permutation_tests") for name in unboxed["overflowing"])


def test_the_report_page_has_nothing_wider_than_the_window(built_report, tmp_path):
    page = built_report.read_text(encoding="utf-8")
    # A copy of the page elsewhere: its browser images addressed where they are.
    page = page.replace('"src":"browser/', f'"src":"{built_report.parent.as_uri()}/browser/')
    check = _selfcheck(page, tmp_path, 800)
    assert check["errors"] == [] and check["browser_images_loaded"] > 0
    assert check["overflowing"] == []

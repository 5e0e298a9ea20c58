"""The report page in a real browser: headless Chromium renders index.html and the page's own self-check
(``<pre id="selfcheck">``, filled on load) says whether every image decoded, every section exists and no
JavaScript error or console.error happened. No Python browser driver needed: ``--dump-dom`` prints the
DOM after load, ``--screenshot`` saves what a reader sees."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SECTIONS = ["findings", "overview", "performance", "training", "metrics", "pairs", "clustering", "extremes",
            "browser", "segments", "confidence", "permutation", "config", "manifest"]


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless browser test needs the `chromium` binary on PATH "
                    "(Debian: apt-get install chromium); not found")
    return binary


def _run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(built_report, tmp_path):
    binary = _chromium()
    url = built_report.resolve().as_uri()
    dumped = _run(binary, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    match = re.search(r'<pre id="selfcheck"[^>]*>(.*?)</pre>', dumped.stdout, re.S)
    assert match, "the page's self-check element is missing from the dumped DOM"
    assert match.group(1).strip(), "the self-check did not run (no load event or JavaScript disabled)"
    check = json.loads(html.unescape(match.group(1)))
    assert check["errors"] == [], check["errors"]
    assert check["images"] > 0
    assert check["not_loaded"] == 0, f"images that did not decode: {check['not_loaded_alt']}"
    assert set(SECTIONS) <= set(check["sections_expected"])
    assert check["sections_found"] == check["sections_expected"]

    screenshot = tmp_path / "report.png"
    shot = _run(binary, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,2000", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(b"\x89PNG")


_HARNESS = """<!DOCTYPE html><html><body><pre id="out"></pre>
<iframe id="report" src="REPORT" width="1200" height="900"></iframe>
<script>
var frame = document.getElementById("report");
frame.addEventListener("load", function () {
  var out = {};
  try {
    var page = frame.contentDocument;
    function column(table, c) {
      return Array.prototype.filter.call(table.tBodies[0].rows, function (r) { return !r.hidden; })
        .map(function (r) { return r.cells[c].textContent; });
    }
    var table = page.getElementById("t-change_ranking");
    var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) { return th.textContent; });
    var median = heads.indexOf("median"), augmentation = heads.indexOf("augmentation");
    out.before = column(table, median);
    table.tHead.rows[0].cells[median].click();
    out.ascending = column(table, median);
    out.aria = table.tHead.rows[0].cells[median].getAttribute("aria-sort");
    table.tHead.rows[0].cells[median].click();
    out.descending = column(table, median);
    var filter = page.querySelector('input[data-table="t-change_ranking"]');
    filter.value = "cutmix";
    filter.dispatchEvent(new Event("input"));
    out.filtered = column(table, augmentation);
    var cards = page.getElementById("browser-cards");
    out.cards = cards.children.length;
    var chosen = page.getElementById("browser-class");
    chosen.value = "1";
    chosen.dispatchEvent(new Event("change"));
    out.card_titles = Array.prototype.map.call(cards.children, function (c) { return c.firstChild.textContent; });
    chosen.value = "";
    chosen.dispatchEvent(new Event("change"));
    var low = page.getElementById("browser-min");
    low.value = "0.5";
    low.dispatchEvent(new Event("change"));
    page.getElementById("browser-order").value = "ascending";
    page.getElementById("browser-order").dispatchEvent(new Event("change"));
    var metrics = JSON.parse(page.getElementById("browser-data").textContent).metrics;
    var model = page.getElementById("browser-model").selectedOptions[0].textContent;
    out.range = Array.prototype.map.call(cards.children, function (card) {
      var rows = card.querySelectorAll("tbody tr");
      var row = Array.prototype.filter.call(rows, function (r) { return r.cells[0].textContent === model; })[0];
      return parseFloat(row.cells[2 + metrics.indexOf(page.getElementById("browser-metric").value)].textContent);
    });
    out.selfcheck = JSON.parse(page.getElementById("selfcheck").textContent);
  } catch (e) { out.error = String(e); }
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>"""


def test_tables_sort_and_filter_and_the_cam_browser_shows_images(built_report, synthetic_study, tmp_path):
    binary = _chromium()
    harness = tmp_path / "harness.html"
    harness.write_text(_HARNESS.replace("REPORT", built_report.resolve().as_uri()))
    # The harness reads the report through an iframe: file pages may only do that with this flag.
    dumped = _run(binary, tmp_path / "profile", "--allow-file-access-from-files", "--virtual-time-budget=10000",
                  "--dump-dom", harness.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    out = json.loads(html.unescape(re.search(r'<pre id="out">(.*?)</pre>', dumped.stdout, re.S).group(1)))
    assert "error" not in out, out.get("error")
    values = [float(v) for v in out["before"]]
    assert out["aria"] == "ascending"
    assert [float(v) for v in out["ascending"]] == sorted(values)
    assert [float(v) for v in out["descending"]] == sorted(values, reverse=True)
    assert out["filtered"] and set(out["filtered"]) == {"cutmix"}

    check = out["selfcheck"]
    assert check["errors"] == [] and check["not_loaded"] == 0
    assert check["browser_images"] == 12 and check["browser_images_loaded"] == 12  # the first page, decoded
    assert out["cards"] == 12
    from safetensors.numpy import load_file

    labels = load_file(str(synthetic_study / "test_set.safetensors"))["labels"]
    assert len(out["card_titles"]) == min(12, int((labels == 1).sum())) > 0
    assert all(" label 1 (" in title for title in out["card_titles"])
    # the first model's first metric kept from 0.5 up, lowest first
    assert out["range"] and all(v >= 0.5 for v in out["range"]) and out["range"] == sorted(out["range"])

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

SECTIONS = ["overview", "performance", "training", "metrics", "pairs", "clustering", "extremes", "segments",
            "confidence", "permutation", "config", "manifest"]


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

"""A rebuilt report redraws and recomputes only what its inputs changed (auglens.report.keys)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auglens.report import build_report
from auglens.report.keys import BUILD_RECORD, fingerprint

# Small statistics and browser: the behaviour under test does not depend on their size.
OPTIONS = {"n_boot": 100, "n_perm": 200, "browser_images": 20, "jobs": 1}


def _stamps(report: Path) -> dict[str, int]:
    """Every file under the report folder -> its modification time (ns)."""
    return {path.relative_to(report).as_posix(): path.stat().st_mtime_ns
            for path in sorted(report.rglob("*")) if path.is_file()}


def _changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


@pytest.fixture
def study(make_study) -> Path:
    root = make_study(augmentations=("affine", "cutmix", "equalize"), metrics=("mad", "pearson"), n_images=30)
    build_report(root, **OPTIONS)
    return root


def test_an_unchanged_rebuild_touches_no_file_and_gives_the_same_page(study):
    report = study / "report"
    page = (report / "index.html").read_bytes()
    before = _stamps(report)
    assert any(name.startswith("figures/") for name in before) and any(name.startswith("browser/") for name in before)
    assert {"cache/median_ci.parquet", "cache/permutation_tests.parquet", BUILD_RECORD} <= before.keys()

    build_report(study, **OPTIONS)

    assert _changed(before, _stamps(report)) == set()
    assert (report / "index.html").read_bytes() == page


def test_a_changed_table_redraws_exactly_the_figures_that_show_it(study):
    report = study / "report"
    before = _stamps(report)
    history = pd.read_csv(study / "training_history.csv")
    history.loc[0, "val_accuracy"] = 0.123  # one value of one model's curve
    history.to_csv(study / "training_history.csv", index=False)

    build_report(study, **OPTIONS)

    # The curves' figure (PNG, SVG) and the page that embeds it; nothing else is drawn or written again.
    assert _changed(before, _stamps(report)) == {"figures/validation_curves.png", "figures/validation_curves.svg",
                                                 "index.html", BUILD_RECORD}


def test_a_changed_metric_redraws_its_figures_and_statistics_and_keeps_the_others(study):
    report = study / "report"
    before = _stamps(report)
    aug = pd.read_parquet(study / "aug_metrics.parquet")
    rows = aug["augmentation"] == "affine"
    aug.loc[rows, "mad"] = aug.loc[rows, "mad"] * 1.5 + 0.01
    aug.to_parquet(study / "aug_metrics.parquet", index=False)

    build_report(study, **OPTIONS)

    changed = _changed(before, _stamps(report))
    assert {"figures/boxplot_mad.png", "cache/median_ci.parquet", "cache/permutation_tests.parquet"} <= changed
    kept = [name for name in before if "_mad." not in name
            and name.startswith(("figures/boxplot_", "figures/correlation_", "figures/segments_"))]
    assert kept and not changed & set(kept)  # other metrics' figures; the segments show cam_metrics.parquet
    assert not any(name.startswith("browser/") for name in changed)  # the strips show CAMs, not metrics
    fresh = pd.read_csv(report / "tables" / "median_ci.csv")
    assert fresh.loc[fresh["metric"] == "mad", "median"].notna().all()


def test_a_missing_or_damaged_record_redraws_what_is_missing(study):
    report = study / "report"
    (report / "figures" / "performance.svg").unlink()
    build_report(study, **OPTIONS)
    assert (report / "figures" / "performance.svg").is_file()

    (report / BUILD_RECORD).write_text("{not json")
    before = _stamps(report)
    build_report(study, **OPTIONS)
    assert "figures/performance.png" in _changed(before, _stamps(report))  # no record: everything is redrawn
    assert json.loads((report / BUILD_RECORD).read_text())["outputs"]["figures/performance.png"]


def test_fingerprint_follows_content_not_identity():
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]})
    assert fingerprint((frame, {"k": np.arange(3)})) == fingerprint((frame.copy(), {"k": np.arange(3)}))
    assert fingerprint(frame) != fingerprint(frame.assign(a=[1.0, 2.0]))
    assert fingerprint(frame) != fingerprint(frame.rename(columns={"b": "c"}))
    assert len({fingerprint(v) for v in (1, 1.0, "1", [1], (1,), True, None)}) == 7
    assert fingerprint({"a": 1, "b": 2}) != fingerprint({"b": 2, "a": 1})  # order is a legend's order
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint(object())

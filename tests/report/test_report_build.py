"""auglens.report.build_report end to end on synthetic study folders (default, single seed, colour, 1 augmentation)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auglens import analysis
from auglens.report import build_report
from auglens.report.html import format_frame

SECTIONS = ["findings", "overview", "performance", "training", "metrics", "pairs", "clustering", "extremes",
            "browser", "segments", "confidence", "permutation", "config", "manifest"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _page(index: Path) -> str:
    return index.read_text(encoding="utf-8")


def _embedded_pngs(page: str) -> list[bytes]:
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert all(src.startswith("data:image/png;base64,") for src in sources), "every image must be embedded"
    return [base64.b64decode(src.split(",", 1)[1]) for src in sources]


def _assert_self_contained(page: str) -> None:
    assert "<link" not in page
    assert not re.search(r'<script[^>]+src=', page)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "url(" not in page  # no CSS fetches (fonts, backgrounds)


def test_report_files_and_page(built_report, synthetic_study):
    index = built_report
    assert index == synthetic_study / "report" / "index.html"
    page = _page(index)
    _assert_self_contained(page)
    for section in SECTIONS:
        assert f'id="{section}"' in page, section
    metrics = analysis.metric_columns_of(pd.read_parquet(synthetic_study / "aug_metrics.parquet"))
    assert metrics == ["mad", "pearson", "overlap_20", "class_kld"]
    for metric in metrics:
        assert f'id="metric-{metric}"' in page
    figures = synthetic_study / "report" / "figures"
    names = {p.stem for p in figures.glob("*.png")}
    assert names == {p.stem for p in figures.glob("*.svg")}, "every figure as PNG and SVG"
    expected = {"performance", "validation_curves", "training_time", "dendrograms",
                *(f"{kind}_{m}" for kind in ("boxplot", "correlation", "cams", "segments") for m in metrics)}
    assert names == expected
    pngs = _embedded_pngs(page)
    assert len(pngs) == len(expected)
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs)
    for svg in figures.glob("*.svg"):
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000]
    # the resolved config and the manifest are shown verbatim
    assert 'name = &quot;synthetic&quot;' in page
    assert "&quot;starting_states&quot;" in page
    assert '<pre id="selfcheck" hidden>' in page


def test_report_tables_equal_the_analysis(built_report, synthetic_study):
    tables = synthetic_study / "report" / "tables"
    perf = pd.read_csv(synthetic_study / "performance.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tables / "performance_summary.csv"), analysis.performance_summary(perf),
                                  check_dtype=False)
    aug = pd.read_parquet(synthetic_study / "aug_metrics.parquet")
    maps = analysis.correlation_maps(aug)
    for name, strongest in (("pairs_strongest", True), ("pairs_weakest", False)):
        saved = pd.read_csv(tables / f"{name}.csv")
        pd.testing.assert_frame_equal(saved, analysis.pair_frequencies(maps, 4, strongest), check_dtype=False)
    corr = pd.read_csv(tables / "correlation_maps.csv")
    mad = corr[corr["metric"] == "mad"].pivot(index="aug_a", columns="aug_b", values="r")
    np.testing.assert_allclose(mad.loc[maps["mad"].index, maps["mad"].columns], maps["mad"], atol=1e-12)
    cam = pd.read_parquet(synthetic_study / "cam_metrics.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(tables / "segment_counts.csv"), analysis.segment_counts(cam),
                                  check_dtype=False)
    extremes = pd.read_csv(tables / "extreme_images.csv")
    pd.testing.assert_frame_equal(extremes, analysis.extreme_images(aug), check_dtype=False)
    ci = pd.read_csv(tables / "median_ci.csv")
    assert (ci["n_boot"] == 200).all() and ((ci["ci_low"] <= ci["median"]) & (ci["median"] <= ci["ci_high"])).all()
    tests = pd.read_csv(tables / "permutation_tests.csv")
    assert len(tests) == 3 * 4 and tests["p_value"].between(0, 1).all()


def _selfcheck_sections(page: str) -> list[str]:
    return json.loads(re.search(r'data-sections="([^"]*)"', page).group(1).replace("&quot;", '"'))


def test_single_seed_colour_images(make_study):
    study = make_study(augmentations=("affine", "cutmix"), seeds=(3,), channels=3, n_images=30, metrics=["pearson"])
    page = _page(build_report(study, n_boot=50, n_perm=100))
    _assert_self_contained(page)
    summary = pd.read_csv(study / "report" / "tables" / "performance_summary.csv")
    assert summary["accuracy_std"].isna().all()
    assert "± –" in page  # std of a single seed shown as a dash
    assert "colour, 8×8 px" in page
    assert all(png.startswith(PNG_SIGNATURE) for png in _embedded_pngs(page))
    assert set(SECTIONS) <= set(_selfcheck_sections(page))


def test_single_augmentation_and_all_nan_metric(make_study):
    study = make_study(augmentations=("affine",), seeds=(1, 2), n_images=20, metrics=["mad", "spearman"])
    for name in ("cam_metrics", "aug_metrics"):  # a metric undefined everywhere (e.g. all maps constant)
        frame = pd.read_parquet(study / f"{name}.parquet")
        frame["spearman"] = np.nan
        frame.to_parquet(study / f"{name}.parquet", index=False)
    stale = study / "report" / "figures" / "from_an_earlier_build.png"  # e.g. a metric no longer configured
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    notes = study / "report" / "notes.txt"
    notes.write_text("not the report's: kept")
    page = _page(build_report(study, n_boot=50, n_perm=100, jobs=1))
    assert not stale.exists() and notes.exists()
    assert "ranking pairs needs at least 3 augmentations" in page
    assert "clustering needs at least 2 augmentations" in page
    assert "Skipped: needs at least 2 augmentations" in page
    figures = {p.stem for p in (study / "report" / "figures").glob("*.png")}
    assert "dendrograms" not in figures and "cams_spearman" not in figures  # nothing extreme when all NaN
    assert {"boxplot_spearman", "correlation_spearman", "cams_mad"} <= figures
    assert all(png.startswith(PNG_SIGNATURE) for png in _embedded_pngs(page))


def test_missing_files_are_listed_at_once(tmp_path, synthetic_study):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nowhere")
    (tmp_path / "performance.csv").write_text("model\n")
    with pytest.raises(FileNotFoundError) as error:
        build_report(tmp_path)
    missing = re.search(r"missing (\[[^]]*\])", str(error.value)).group(1)
    assert missing == str(["cam_metrics.parquet", "aug_metrics.parquet", "test_set.safetensors"])


def test_format_frame():
    frame = pd.DataFrame({"a": [0.123456, np.nan, 1e-6], "b": ["x", None, "z"], "c": [True, False, True]})
    shown = format_frame(frame)
    assert shown["a"].tolist() == ["0.123", "–", "1e-06"]
    assert shown["b"].tolist() == ["x", "–", "z"]
    assert shown["c"].tolist() == ["yes", "no", "yes"]


def test_findings_rank_augmentations_by_cam_change_with_intervals(built_report, synthetic_study):
    page = _page(built_report)
    assert page.index('id="findings"') < page.index('id="overview"')
    ranking = pd.read_csv(synthetic_study / "report" / "tables" / "change_ranking.csv")
    ci = pd.read_csv(synthetic_study / "report" / "tables" / "median_ci.csv")
    for metric, rows in ranking.groupby("metric"):
        cells = ci[ci["metric"] == metric].set_index("augmentation")["median"]
        # most changed first: the lowest median of a similarity, the highest of a difference
        expected = cells.sort_values(ascending=analysis.higher_is_better(metric)).index.tolist()
        assert rows.sort_values("rank")["augmentation"].tolist() == expected
        first = rows.sort_values("rank").iloc[0]
        assert f"<b>{metric}</b>: most changed {first['augmentation']} ({first['median']:.3g} [" in page
    assert 'class="banner"' not in page  # the synthetic models are well above chance


def test_banner_for_a_model_at_chance_level(make_study):
    study = make_study(augmentations=("affine", "cutmix"), seeds=(1,), n_images=20, metrics=["mad"])
    perf = pd.read_csv(study / "performance.csv")
    perf.loc[perf["augmentation"] == "cutmix", "accuracy"] = 0.2  # 4 classes: chance is 0.25
    perf.to_csv(study / "performance.csv", index=False)
    page = _page(build_report(study, n_boot=20, n_perm=20, jobs=1, browser_images=0))
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', page, re.S).group(1)
    assert "cutmix-s1: test accuracy 0.200 is near chance level (0.250 for 4 classes)" in banner
    assert "augmentation cutmix: mean test accuracy 0.200 is" in banner and "affine" not in banner
    assert page.index('class="banner"') < page.index('id="overview"')


def test_links_class_names_and_browser_files(built_report, synthetic_study):
    page = _page(built_report)
    report = synthetic_study / "report"
    for href in re.findall(r'<a href="([^"#]+)"', page):
        assert (report / href).resolve().is_file(), href  # every file link resolves
    assert '<a href="tables/extreme_images.csv">' in page and '<a href="figures/performance.svg">' in page
    assert '<a href="../performance.csv">' in page
    classes = json.loads(re.search(r'<script type="application/json" id="browser-data">(.*?)</script>',
                                   page, re.S).group(1))["classes"]
    extremes = re.search(r'id="t-extreme_images">(.*?)</table>', page, re.S).group(1)
    label = pd.read_csv(report / "tables" / "extreme_images.csv")["label"].iloc[0]
    assert f">{label} ({classes[label]})</td>" in extremes
    data = json.loads(re.search(r'id="browser-data">(.*?)</script>', page, re.S).group(1))
    n_images = len(pd.read_parquet(synthetic_study / "aug_metrics.parquet")["image"].unique())
    assert len(data["images"]) == n_images == len(list((report / "browser").glob("*.png")))
    assert data["models"][0].endswith("(baseline)") and len(data["models"]) == 4
    first = data["images"][0]
    cm = pd.read_parquet(synthetic_study / "cam_metrics.parquet")
    row = cm[(cm["augmentation"] == "affine") & (cm["seed"] == 1) & (cm["image"] == 0)].iloc[0]
    assert first["preds"][1] == row["model_pred"] and first["preds"][0] == row["baseline_pred"]
    expected = [None if np.isnan(row[m]) else round(float(row[m]), 5) for m in data["metrics"]]
    assert first["values"][0] == expected
    png = (report / first["src"]).read_bytes()
    assert png.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("baseline", ["shared", "per_seed"])
def test_overview_says_which_baseline_each_model_is_compared_with(make_study, baseline):
    study = make_study(augmentations=("affine", "cutmix", "equalize"), seeds=(1, 2), n_images=20, metrics=["mad"])
    config = (study / "config.toml").read_text()
    config = config.replace("[study]\n", f'[model]\ninit_seed = 7\n\n[study]\nbaseline = "{baseline}"\n')
    (study / "config.toml").write_text(config)
    page = _page(build_report(study, n_boot=20, n_perm=20, jobs=1))
    assert "trained from the same starting state" not in page
    assert "same initial weights (model.init_seed = 7)" in page
    expected = ("one baseline model (no augmentation), trained with the first seed" if baseline == "shared"
                else "trained with its own seed")
    assert expected in page
    assert "seed means resting on fewer values than seeds" in page


def test_weakest_pairs_rank_by_signed_r_or_by_absolute_r(make_study):
    study = make_study(augmentations=("affine", "cutmix", "equalize", "elastic"), n_images=30)
    signed = _page(build_report(study, n_boot=20, n_perm=20, jobs=1))
    assert "ranked by the signed correlation r" in signed
    absolute = _page(build_report(study, n_boot=20, n_perm=20, pair_rank="absolute", jobs=1))
    assert "Pairs are ranked by |r|" in absolute
    with pytest.raises(ValueError, match="pair_rank"):
        build_report(study, pair_rank="magnitude")


def test_controls_give_a_floor_and_stay_out_of_the_analyses_across_augmentations(make_study):
    controls = [("init_seed", 1), ("sampling_seed", 7)]
    names = ["control:init_seed=1", "control:sampling_seed=7"]
    study = make_study(augmentations=("affine", "cutmix", "equalize"), seeds=(1, 2), n_images=30,
                       metrics=["mad", "pearson"], controls=controls)
    page = _page(build_report(study, n_boot=50, n_perm=50, jobs=1, browser_images=5))
    tables = study / "report" / "tables"
    ci = pd.read_csv(tables / "median_ci.csv")
    assert set(names) <= set(ci["augmentation"])  # the controls' intervals are shown: the floor comes from them
    ranking = pd.read_csv(tables / "change_ranking.csv", keep_default_na=False)
    assert set(ranking["augmentation"]) == {"affine", "cutmix", "equalize"}
    for metric, rows in ranking.groupby("metric"):
        controls_ci = ci[(ci["metric"] == metric) & ci["augmentation"].isin(names)]
        low, high = controls_ci["ci_low"].min(), controls_ci["ci_high"].max()
        # The CSVs hold the floats' shortest round-trip text, so the floor recomputes exactly.
        assert (rows["floor_low"].astype(float) == low).all() and (rows["floor_high"].astype(float) == high).all()
        similarity = analysis.higher_is_better(metric)
        for row in rows.itertuples():
            lo, hi = float(row.ci_low), float(row.ci_high)
            if similarity:
                expected = "beyond" if hi < low else "within" if lo >= low else "unclear"
            else:
                expected = "beyond" if lo > high else "within" if hi <= high else "unclear"
            assert row.floor == expected, (metric, row)
        assert f"<b>{metric}</b>: most changed" in page and "retraining floor [" in page
    # Not among the augmentations compared with each other.
    correlations = pd.read_csv(tables / "correlation_maps.csv")
    assert not set(names) & (set(correlations["aug_a"]) | set(correlations["aug_b"]))
    permutations = pd.read_csv(tables / "permutation_tests.csv")
    assert not set(names) & (set(permutations["aug_a"]) | set(permutations["aug_b"]))
    assert not set(names) & set(pd.read_csv(tables / "segment_counts.csv")["augmentation"])
    # But trained models like any other: in the performance table, and named in the overview.
    assert set(names) <= set(pd.read_csv(tables / "performance_summary.csv")["augmentation"])
    assert "retraining controls" in page and "Retraining controls (init_seed = 1; sampling_seed = 7)" in page
    assert "Grey band: the retraining floor" in page

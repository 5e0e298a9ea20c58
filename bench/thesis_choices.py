"""How far the thesis's two open choices move a study's results (docs/methodology.md, "Two open readings").

- copies: each image's augmented copy drawn anew every epoch (``training.augmentation_copies = "per_epoch"``,
  §5.1's "online during batch fetching") or once for all epochs (``"fixed"``, Appendix B's "initial, purely
  augmented dataset");
- resolution: augmentations run on the stored images before resizing (``training.augmentation_resolution =
  "native"``) or after resizing to ``model.input_size`` (``"model_input"``), both at ``--input-size`` (the
  config's own size is often the native one, where the two are the same).

The study runs four times, into OUT/copies-per_epoch, OUT/copies-fixed, OUT/resolution-native and
OUT/resolution-model_input, sharing one artifact store (OUT/artifacts): a baseline's key does not depend on
either setting, so each pair of runs shares its baseline and differs only in the augmented models. Then
OUT/thesis_choices.md gets, per choice: the test accuracy of each augmentation (mean over seeds) under both
settings; per metric, the largest change of a per-augmentation median (``aug_metrics.parquet``, what the
report's boxplots show) beside two yardsticks -- the largest difference between two seeds' medians
(``cam_metrics.parquet``) and the spread of the medians across augmentations -- and the Spearman rank
correlation of the augmentations' medians under the two settings (1: same order); the median of each
augmentation and metric under both; and the thesis's Tables 5.1/5.2 (how often a pair is among the 4 most /
least correlated over the metrics) under both. OUT/thesis_choices.json holds the same numbers.

    python bench/thesis_choices.py examples/fashion-mnist-quick.toml --out results/thesis-choices
    python bench/thesis_choices.py CONFIG --out DIR --input-size 56 data.train_subset=2000 training.epochs=2

Extra ``key=value`` arguments override the config in all four runs (e.g. to shrink it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_json  # noqa: E402

from auglens.analysis import correlation_maps, pair_frequencies  # noqa: E402
from auglens.analysis.columns import metric_columns_of  # noqa: E402
from auglens.config import load  # noqa: E402
from auglens.study.run import run_study  # noqa: E402

#: choice -> (config key, the two settings: the default first); the settings' runs are OUT/<choice>-<setting>.
CHOICES = {"copies": ("training.augmentation_copies", ("per_epoch", "fixed")),
           "resolution": ("training.augmentation_resolution", ("native", "model_input"))}
TOP_PAIRS = 4  # the thesis's Tables 5.1/5.2


def run_choice(config_path: Path, out: Path, choice: str, overrides: list[str], input_size: int | None
               ) -> dict[str, Path]:
    """Run the study once per setting of ``choice``; {setting: results folder}."""
    key, settings = CHOICES[choice]
    folders = {}
    for setting in settings:
        extra = [f"{key}={setting}", f"runtime.artifacts={out / 'artifacts'}", "runtime.report=false"]
        if choice == "resolution" and input_size is not None:
            extra.append(f"model.input_size={input_size}")
        folder = out / f"{choice}-{setting}"
        run_study(load(config_path, [*overrides, *extra]), folder)
        folders[setting] = folder
    return folders


def _accuracy(folder: Path) -> pd.Series:
    performance = pd.read_csv(folder / "performance.csv")
    return performance.groupby("augmentation")["accuracy"].mean()


def _augmented(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["kind"] != "control"] if "kind" in frame else frame


def compare(folders: dict[str, Path]) -> dict:
    """The tables of two runs of one study that differ in one setting (the default's first)."""
    (a, folder_a), (b, folder_b) = folders.items()
    # Retraining controls (kind "control") are no augmentation: left out here as in the report's analyses
    # across augmentations (the Spearman of medians, the pair tables); their accuracy is still listed.
    aug = {s: _augmented(pd.read_parquet(f / "aug_metrics.parquet")) for s, f in folders.items()}
    metrics = metric_columns_of(aug[a])
    medians = {s: frame.groupby("augmentation")[metrics].median() for s, frame in aug.items()}
    # The yardstick of run-to-run variation: under the default setting, how far one seed's median of an
    # augmentation lies from another seed's (per-seed values, cam_metrics.parquet).
    per_seed = _augmented(pd.read_parquet(folder_a / "cam_metrics.parquet")).groupby(
        ["augmentation", "seed"])[metrics].median()
    seed_spread = per_seed.groupby(level="augmentation").agg(lambda v: v.max() - v.min()).max()
    summary = []
    for metric in metrics:
        ma, mb = medians[a][metric], medians[b][metric].reindex(medians[a].index)
        ranked = len(ma) > 2 and ma.nunique() > 1 and mb.nunique() > 1
        summary.append({"metric": metric, "max_abs_median_change": float((mb - ma).abs().max()),
                        "max_median_seed_difference": float(seed_spread[metric]),
                        "median_spread_across_augmentations": float(ma.max() - ma.min()),
                        "spearman_of_medians": float(spearmanr(ma, mb).statistic) if ranked else float("nan")})
    per_augmentation = pd.concat(medians, names=["setting", "augmentation"]).rename_axis(columns="metric")
    accuracy = pd.DataFrame({s: _accuracy(f) for s, f in folders.items()})
    pairs = {}
    for strongest in (True, False):
        counts = {s: pair_frequencies(correlation_maps(frame, metrics), TOP_PAIRS, strongest).set_index("pair")["count"]
                  for s, frame in aug.items()}
        table = pd.DataFrame(counts).fillna(0).astype(int)
        pairs["most" if strongest else "least"] = table.sort_values([a, b], ascending=False, kind="stable")
    return {"settings": [a, b], "folders": [str(folder_a), str(folder_b)], "summary": summary, "metric_order": metrics,
            "medians": per_augmentation, "accuracy": accuracy, "pairs": pairs}


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    frame = frame.reset_index()
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"

    def cell(value):
        return f"{value:.{digits}g}" if isinstance(value, (float, np.floating)) else str(value)

    return "\n".join([head, rule, *("| " + " | ".join(cell(v) for v in row) + " |"
                                    for row in frame.itertuples(index=False))])


def report(results: dict[str, dict], command: str) -> str:
    lines = ["# The thesis's open choices: how far they move the results", "", f"`{command}`", ""]
    for choice, result in results.items():
        a, b = result["settings"]
        key = CHOICES[choice][0]
        lines += [f"## {key}: {a} vs {b}", "", f"Folders: {', '.join(result['folders'])}.", "",
                  "Test accuracy per augmentation (mean over seeds):", "", _markdown(result["accuracy"]), "",
                  f"Per metric: the largest |median({b}) - median({a})| over augmentations; for scale, under {a}, "
                  "the largest difference between two seeds' medians of one augmentation (single seeds, so a "
                  "generous yardstick for the seed-averaged medians) and the spread of the augmentations' "
                  "medians; and the Spearman correlation of the augmentations' medians under the two settings "
                  "(1: the same order):", "", _markdown(pd.DataFrame(result["summary"]).set_index("metric")), "",
                  "Median per augmentation and metric:", "",
                  _markdown(result["medians"].stack().unstack("augmentation").swaplevel().sort_index(
                      level="metric", key=lambda i: i.map(result["metric_order"].index), sort_remaining=False)), ""]
        for kind, table in result["pairs"].items():
            lines += [f"Pairs among the {TOP_PAIRS} {kind} correlated, counted over the metrics (thesis Table "
                      f"{'5.1' if kind == 'most' else '5.2'}):", "", _markdown(table), ""]
    return "\n".join(lines)


def _jsonable(result: dict) -> dict:
    out = dict(result)
    out["medians"] = {f"{setting}/{augmentation}": row for (setting, augmentation), row
                      in result["medians"].to_dict(orient="index").items()}
    out["accuracy"] = result["accuracy"].to_dict()
    out["pairs"] = {kind: table.to_dict() for kind, table in result["pairs"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="study config (TOML)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs and the tables")
    parser.add_argument("--input-size", type=int, default=56,
                        help="model.input_size of the two resolution runs (default 56); 0: the config's")
    parser.add_argument("--only", choices=sorted(CHOICES), action="append", help="run only this choice (repeatable)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = parser.parse_args()
    results = {choice: compare(run_choice(args.config, args.out, choice, args.overrides, args.input_size or None))
               for choice in (args.only or list(CHOICES))}
    command = " ".join(["python", *sys.argv])
    text = report(results, command)
    (args.out / "thesis_choices.md").write_text(text)
    write_json(args.out / "thesis_choices.json", {c: _jsonable(r) for c, r in results.items()})
    print(text)


if __name__ == "__main__":
    main()

"""``build_report(DIR)``: every figure and table of a finished study, and one self-contained index.html.

Reads only the files of the study folder (:mod:`auglens.report.study_files`), computes the statistics
with :mod:`auglens.analysis`, draws with :mod:`auglens.report.figures` / :mod:`auglens.report.cam_grid`,
and writes ``DIR/report/figures/*.png|svg``, ``DIR/report/tables/*.csv`` and ``DIR/report/index.html``.
Files of an earlier build that this build did not produce are removed, so the folder always matches
the page; files an earlier build drew (or statistics it computed) from the same data with the same code are
kept as they are (:mod:`auglens.report.keys`), so rebuilding the report of a finished study takes seconds. The page opens with the findings (and a warning banner when a model is near chance level or
far below the baseline) and ends its analyses with a per-image CAM browser whose images are files under
``DIR/report/browser/``, loaded only for the page of results on screen.

Folders written by ``auglens compare`` report the same way (no training curves: nothing was trained).
A folder holding ``architectures.csv`` (``auglens architectures``, thesis step 2) gets an "Architecture
selection" section; a folder holding only that (or only distortion analyses) gets a page of those sections.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from auglens import analysis
from auglens._tomllib import tomllib
from auglens.analysis import BASELINE, higher_is_better
from auglens.metrics import spec_for_column
from auglens.registry import UnknownNameError
from auglens.report import figures
from auglens.report.cam_grid import GridColumn, GridRow, display_maps, extreme_image_grid, write_browser_strips
from auglens.report.html import (
    BannerBlock,
    BrowserBlock,
    FigureBlock,
    PreBlock,
    RawBlock,
    Section,
    TableBlock,
    TextBlock,
    escape,
    format_frame,
    render_page,
)
from auglens.report.keys import BuildRecord, output_key
from auglens.report.study_files import ARCHITECTURES_FILE, StudyFiles, load_architectures, load_cam_set, load_study
from auglens.report.style import augmentation_colours, save_figure, style
from auglens.store import write_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["build_report"]

_SEGMENT_KEYS = ["augmentation", "seed", "label", "baseline_pred", "model_pred"]
#: Columns holding class indices: shown with the class name beside the index.
_CLASS_COLUMNS = {"label", "true", "pred", "baseline_pred", "model_pred", "pred_a", "pred_b", "class"}
#: Files of a results folder the report links to (those present), relative to the folder.
_STUDY_FILES = ("performance.csv", "training_history.csv", "confusion_matrices.csv", "cam_metrics.parquet",
                "aug_metrics.parquet", "pair_metrics.parquet", "model_faithfulness.parquet",
                "aug_faithfulness.parquet", "model_cka.csv", "aug_cka.csv", "test_set.safetensors", "config.toml",
                "manifest.json", ARCHITECTURES_FILE)

# Thesis figure numbers (boxplot, correlation map) per metric column, for captions only.
_THESIS_FIGURES = {"overlap_20": ("5.10", "5.11"), "overlap_10": ("5.12", "5.13"), "overlap_5": ("5.14", "5.15"),
                   "pearson": ("5.16", "5.17"), "spearman": ("5.18", "5.19"), "mad": ("5.20", "5.21"),
                   "msd": ("5.22", "5.23"), "class_kld": ("5.24", "5.25")}


def _render(task: tuple[Callable[..., Figure], tuple, str, str]) -> bytes:
    """Build one figure and save it as PNG + SVG; returns the PNG bytes. Runs in a worker process."""
    make, args, directory, name = task
    with style():
        return save_figure(make(*args), Path(directory), name)


def _work(task: tuple) -> bytes | None:
    """One task of :meth:`_Writer.render`: a figure (returns its PNG) or a deferred file write."""
    if task[0] == "figure":
        return _render(task[1:])
    _, write, args = task
    write(*args)
    return None


class _Writer:
    """Collects figures (rendered later, possibly in parallel) and writes tables under ``DIR/report``.

    Remembers every file it writes, so files of an earlier build that this one did not produce can be removed.
    A drawn file whose key (:mod:`auglens.report.keys`: its drawing function, the data it shows, the drawing
    code) matches the previous build's is kept as it is; a table or page whose text did not change is not
    rewritten. So a rebuild over unchanged tables draws nothing and touches no file.
    """

    def __init__(self, root: Path, classes: list[str] | None = None):
        self.root = root
        self.figures = root / "figures"
        self.tables = root / "tables"
        self.browser = root / "browser"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.tables.mkdir(parents=True, exist_ok=True)
        self.classes = classes or []
        self.written: set[Path] = set()
        self.keys = BuildRecord(root)
        self._pending: list[tuple[FigureBlock, Callable[..., Figure], tuple]] = []
        self._writes: list[tuple[Callable[..., None], tuple]] = []
        self.drawn: list[str] = []  # outputs (relative to the report folder) this build drew rather than kept

    def figure(self, make: Callable[..., Figure], args: tuple, name: str, title: str, caption: str) -> FigureBlock:
        """A block for the figure ``make(*args)``; drawn and saved by :meth:`render` unless the files of the
        previous build show the same data with the same code."""
        files = [self.figures / f"{name}.png", self.figures / f"{name}.svg"]
        key = output_key(make, args)
        self.written.update(files)
        self.keys.record(key, files)
        block = FigureBlock(name, title, caption, b"")
        if self.keys.unchanged(key, files):
            block.png = files[0].read_bytes()
        else:
            self._pending.append((block, make, args))
            self.drawn.append(f"figures/{name}")
        return block

    def table(self, frame: pd.DataFrame, name: str, title: str, caption: str, shown: pd.DataFrame | None = None,
              index: bool = False) -> TableBlock:
        """Save ``frame`` (full precision) as CSV; show ``shown`` (default: ``frame`` formatted)."""
        self.csv(frame, name)
        return TableBlock(name, title, caption, self.with_class_names(format_frame(frame) if shown is None else shown),
                          index)

    def with_class_names(self, shown: pd.DataFrame) -> pd.DataFrame:
        """Class-index columns (label, true, pred, ...) shown as ``3 (Dress)``."""
        if not self.classes:
            return shown
        shown = shown.copy()
        for column in _CLASS_COLUMNS.intersection(shown.columns):
            shown[column] = [self.class_label(v) for v in shown[column]]
        return shown

    def class_label(self, value) -> str:
        text = str(value)
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(self.classes):
            return f"{text} ({self.classes[int(text)]})"
        return text

    def csv(self, frame: pd.DataFrame, name: str) -> None:
        path = self.tables / f"{name}.csv"
        _write_if_changed(path, frame.to_csv(index=False).encode())
        self.written.add(path)

    def write_later(self, write: Callable[..., None], inputs: tuple, paths: list[Path],
                    prepare: Callable[..., tuple] | None = None) -> None:
        """Have :meth:`render` call ``write(*prepare(*inputs))`` (``write(*inputs)`` without ``prepare``), which
        writes ``paths``, alongside the figures, unless the previous build wrote them from the same ``inputs``
        with the same code. ``prepare`` runs here, only for writes that are due."""
        key = output_key(write, inputs)
        self.written.update(paths)
        self.keys.record(key, paths)
        if not self.keys.unchanged(key, paths):
            self._writes.append((write, prepare(*inputs) if prepare is not None else inputs))
            self.drawn += [path.relative_to(self.root).as_posix() for path in paths]

    def computed(self, name: str, compute: Callable[..., pd.DataFrame], **arguments) -> pd.DataFrame:
        """``compute(**arguments)``, or the table the previous build computed from the same arguments with the same
        code (kept as ``cache/<name>.parquet``: parquet gives back the same values and dtypes)."""
        path = self.root / "cache" / f"{name}.parquet"
        key = output_key(compute, arguments)
        self.written.add(path)
        self.keys.record(key, [path])
        if self.keys.unchanged(key, [path]):
            return pd.read_parquet(path)
        table = compute(**arguments)
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_atomic(str(path), buffer.getvalue())
        return table

    def render(self, jobs: int) -> None:
        """Draw and save every pending figure, and do the deferred writes, in ``jobs`` processes where the
        platform forks cheaply."""
        tasks = [("figure", make, args, str(self.figures), block.name) for block, make, args in self._pending]
        tasks += [("write", write, args) for write, args in self._writes]
        if tasks:
            import matplotlib.figure  # noqa: F401  # imported once here, shared by the forked workers
        # Figures are independent and matplotlib is single-threaded, so processes are the way to use the
        # cores; fork (Linux) shares the imported modules, so a worker starts in milliseconds.
        if jobs > 1 and len(tasks) > 1 and sys.platform.startswith("linux"):
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("fork")) as pool:
                results = list(pool.map(_work, tasks))
        else:
            results = [_work(task) for task in tasks]
        for (block, _, _), png in zip(self._pending, results):
            block.png = png
        self._pending.clear()
        self._writes.clear()

    def page(self, text: str) -> Path:
        """Write ``index.html`` (when its text changed), remove what this build did not produce, save the keys."""
        index = self.root / "index.html"
        _write_if_changed(index, text.encode())
        self.remove_stale()
        self.keys.save()
        return index

    def remove_stale(self) -> None:
        for folder, suffixes in ((self.figures, {".png", ".svg"}), (self.tables, {".csv"}), (self.browser, {".png"}),
                                 (self.root / "cache", {".parquet"})):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.suffix in suffixes and path.is_file() and path not in self.written:
                    path.unlink()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``path`` atomically unless it holds ``data`` already (its modification time then stays)."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_atomic(str(path), data)


def _mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"m ± s"`` (``"m ± –"`` for one value: std undefined), and a whole number alone when every value is
    that number (e.g. the same best epoch for every seed)."""
    if np.isnan(mean):
        return "–"
    if (np.isnan(std) or std == 0) and float(mean).is_integer():
        return f"{int(mean)}"
    return f"{mean:.{digits}f} ± " + ("–" if np.isnan(std) else f"{std:.{digits}f}")


def _direction_text(metric: str) -> str:
    direction = higher_is_better(metric)
    if direction is None:
        return "Its direction (whether higher means more similar) is not declared."
    spec = spec_for_column(metric)
    if spec.input == "mask":
        return ("Scored against the object masks: higher values mean more of the model's CAM lies on the object; "
                "a _change column is the augmented model's value minus the baseline's on the same image "
                "(positive = attention moved onto the object).")
    return f"{'Higher' if direction else 'Lower'} values mean the augmented model is closer to the baseline."


def _description(metric: str) -> str:
    try:
        return spec_for_column(metric).description
    except UnknownNameError:
        return f"Metric column {metric!r}."


def build_report(dir: Path | str, *, n_boot: int = 1000, n_perm: int = 5000, k_pairs: int = 4,
                 pair_rank: str = "signed", seed: int = 0, jobs: int | None = None,
                 browser_images: int = 1000) -> Path:
    """Build ``DIR/report/index.html`` (and its figures and tables) from the study folder ``dir``.

    Args:
        dir: a finished study folder (what ``auglens run --out DIR`` writes). Only its files are read.
        n_boot: bootstrap resamples per median confidence interval.
        n_perm: random swap patterns per permutation test.
        k_pairs: pairs counted per correlation map in the pair-frequency tables (the thesis uses 4).
        pair_rank: ``"signed"`` ranks pairs by r (the thesis's tables: the weakest are the lowest r),
            ``"absolute"`` by |r| (the weakest are the closest to 0).
        seed: seed of the bootstrap and the permutation tests.
        jobs: processes drawing figures (default: CPU count, at most 8; 1 = in this process).
        browser_images: test images in the CAM browser (the first ones; 0 = no browser). Each is one PNG
            file of a few kB under ``report/browser/``.

    Returns:
        The path of ``index.html``.
    """
    folder = Path(dir)
    distortion = _distortion_section(folder, None) if (folder / "distortion").is_dir() else None
    architectures = load_architectures(folder) if folder.is_dir() else None
    if (distortion is not None or architectures is not None) and not (folder / "performance.csv").exists():
        return _report_without_study(folder, distortion is not None, architectures)
    study = load_study(dir)
    root = study.root / "report"
    writer = _Writer(root, study.classes)
    if pair_rank not in ("signed", "absolute"):
        raise ValueError(f"pair_rank must be 'signed' or 'absolute', got {pair_rank!r}")
    sections = _sections(study, writer, n_boot=n_boot, n_perm=n_perm, k_pairs=k_pairs, pair_rank=pair_rank,
                         seed=seed, browser_images=browser_images)
    if distortion is not None:
        sections.insert(-2, _distortion_section(folder, writer))
    if architectures is not None:
        sections.insert(2, _architecture_section(architectures, writer))  # step 2 precedes the study's results
    writer.render(jobs if jobs is not None else min(8, os.cpu_count() or 1))
    name = _study_name(study)
    subtitle = (f"auglens study report — {study.root.resolve()} — what changes in a classifier's class "
                "activation maps when it is trained with data augmentation (after Dorneles 2024)")
    return writer.page(render_page(f"auglens report: {name}", subtitle, sections))


def _distortion_section(folder: Path, writer: _Writer | None) -> Section | None:
    """The distortion paper's analyses found under ``folder/distortion/<analysis>/``: their figures and tables.

    With ``writer`` None this only checks that there is something to show.
    """
    analyses = sorted(p for p in (folder / "distortion").iterdir() if p.is_dir() and any(p.glob("*.png")))
    if not analyses:
        return None
    section = Section("distortion", "Distortion analyses",
                      "The analyses of Marcu & Prügel-Bennett (ICML 2022) run into this folder with `auglens "
                      "distortion` (docs/distortion.md): one subsection per analysis, its figure and its tables "
                      "(mean ± std over runs where there are several).")
    if writer is None:
        return section
    for analysis_dir in analyses:
        name = analysis_dir.name
        child = Section(f"distortion-{name}", name.replace("_", " ").capitalize(), "")
        for png in sorted(analysis_dir.glob("*.png")):
            links = tuple(f"../distortion/{name}/{f.name}" for f in (png, png.with_suffix(".svg")) if f.exists())
            child.blocks.append(FigureBlock(f"distortion_{name}_{png.stem}", png.stem.replace("_", " "),
                                            f"distortion/{name}/{png.name}", png.read_bytes(), links))
        for csv in sorted(analysis_dir.glob("*.csv")):
            frame = pd.read_csv(csv)
            shown = frame if len(frame) <= 60 else frame.head(60)
            child.blocks.append(writer.table(frame, f"distortion_{name}_{csv.stem}", csv.stem.replace("_", " "),
                                             f"distortion/{name}/{csv.name}" + (" (first 60 rows)" if len(frame) > 60 else ""),
                                             format_frame(shown)))
        section.children.append(child)
    return section


def _report_without_study(folder: Path, distortion: bool, architectures: pd.DataFrame | None) -> Path:
    """The page of a folder holding no study: its architecture selection and/or distortion analyses."""
    root = folder / "report"
    writer = _Writer(root)
    sections = []
    if architectures is not None:
        sections.append(_architecture_section(architectures, writer))
    if distortion:
        sections.append(_distortion_section(folder, writer))
    writer.render(1)
    what = " and ".join((["architecture selection"] if architectures is not None else [])
                        + (["distortion analyses"] if distortion else []))
    return writer.page(render_page(f"auglens report: {folder.resolve().name}", f"auglens {what} — {folder.resolve()}",
                                   sections))


def _architecture_section(architectures: pd.DataFrame, writer: _Writer) -> Section:
    """Thesis step 2 (§5.1, Figures 5.1-5.5): the candidates' per-epoch test metrics and training times."""
    summary = analysis.architecture_summary(architectures)
    intro = ("Thesis step 2 (§5.1, Figures 5.1-5.5): each candidate architecture trained as the study's baseline "
             "(same initial-weight seed, data order, split and training recipe) with `auglens architectures`, the "
             "validation and test sets evaluated after every epoch (architectures.csv). Training time counts the "
             "training steps only, evaluation excluded. The thesis chose the architecture with the best balance "
             "of test performance and training time.")
    shown = summary.rename(columns={"best_epoch": "kept epoch", "seconds_to_best": "seconds to kept epoch",
                                    "train_seconds": "training time (s)"})
    return Section("architectures", "Architecture selection", intro, [
        writer.figure(figures.architecture_curves, (architectures,), "architecture_curves",
                      "Test metrics per epoch, one line per architecture",
                      "Accuracy, macro precision, recall and F1 on the test set after each epoch (thesis Figs "
                      "5.1-5.4); fractions in [0, 1], higher is better."),
        writer.figure(figures.architecture_time_bars, (architectures,), "architecture_time",
                      "Training time per architecture",
                      "Seconds of training over all epochs, evaluation excluded (thesis Fig. 5.5)."),
        writer.table(summary, "architecture_summary", "Kept epoch per architecture",
                     "The epoch a study would keep (highest validation accuracy, the earliest on ties) and the test "
                     "metrics at that epoch.", format_frame(shown)),
    ])


def _study_name(study: StudyFiles) -> str:
    """The config's ``name`` if it has one, else the folder name."""
    if study.config_text:
        try:
            name = tomllib.loads(study.config_text).get("name")
        except tomllib.TOMLDecodeError:  # shown verbatim in the Configuration section anyway
            name = None
        if isinstance(name, str) and name:
            return name
    return study.root.resolve().name


def _sections(study: StudyFiles, writer: _Writer, *, n_boot: int, n_perm: int, k_pairs: int, pair_rank: str,
              seed: int, browser_images: int) -> list[Section]:
    perf, history, cam_metrics, aug_metrics = study.performance, study.history, study.cam_metrics, study.aug_metrics
    order = analysis.augmentation_order(perf, aug_metrics, baseline=BASELINE)
    # Retraining controls are compared with the baseline like augmentations, but are no augmentation: they
    # give the noise floor (findings, boxplot bands, confidence table) and stay out of every analysis across
    # augmentations (correlation maps, pairs, clustering, extremes, browser, segments, permutation tests).
    controls = list(dict.fromkeys(aug_metrics.loc[analysis.is_control(aug_metrics), "augmentation"].astype(str)))
    augmented = study
    if controls:
        augmented = replace(study, cam_metrics=cam_metrics[~analysis.is_control(cam_metrics)],
                            aug_metrics=aug_metrics[~analysis.is_control(aug_metrics)])
    augmentations = [a for a in order if a in set(augmented.aug_metrics["augmentation"].astype(str))]
    colours = augmentation_colours(order, BASELINE, controls)
    metrics = analysis.metric_columns_of(aug_metrics)
    seeds = list(dict.fromkeys(perf["seed"]))

    # The bootstrap and the permutation tests are half of a rebuild's time without drawing: kept when unchanged.
    ci = writer.computed("median_ci", analysis.median_ci_table, aug_metrics=aug_metrics, metrics=metrics,
                         n_boot=n_boot, seed=seed)
    floors = analysis.control_floor(ci, controls) if controls else None
    sections = [_findings(study, writer, ci, n_boot, controls),
                _overview(study, writer, augmentations, metrics, seeds, controls),
                _performance(perf, writer, colours),
                _training(perf, history, writer, colours)]
    maps = analysis.correlation_maps(augmented.aug_metrics, metrics, augmentations)
    sections.append(_metric_sections(aug_metrics, maps, writer, colours, augmentations, metrics, floors))
    sections.append(_pairs(maps, writer, k_pairs, len(augmentations), pair_rank))
    sections.append(_clustering(maps, writer, len(augmentations)))
    if study.faithfulness is not None or study.cka is not None:
        # Controls included: a retrained baseline's CKA and faithfulness are the floor the augmentations' are read against.
        sections.append(_model_analyses(study, writer, [*augmentations, *controls], metrics))
    sections.append(_extremes(augmented, writer, augmentations, metrics))
    sections.append(_browser(augmented, writer, augmentations, metrics, browser_images))
    sections.append(_segments(augmented.cam_metrics, writer, augmentations, metrics))
    sections.append(_confidence(ci, writer, metrics, n_boot, seed))
    sections.append(_permutation(augmented.aug_metrics, writer, metrics, n_perm, seed, len(augmentations)))
    sections.append(Section("config", "Configuration", "The resolved configuration the study ran with "
                            "(config.toml, verbatim).",
                            [PreBlock("config.toml",
                                      study.config_text or "(config.toml not found in the study folder)")]))
    sections.append(Section("manifest", "Manifest", "Versions, seeds, artifact keys and timings recorded by the "
                            "run (manifest.json).",
                            [PreBlock("manifest.json", json.dumps(study.manifest, indent=1) if study.manifest
                                      else "(manifest.json not found in the study folder)")]))
    return sections


# ------------------------------------------------------------------------------------------ sections

def _overview(study: StudyFiles, writer: _Writer, augmentations: list[str], metrics: list[str],
              seeds: list, controls: Sequence[str] = ()) -> Section:
    n_images = len(study.labels)
    channels, height, width = study.images.shape[1:]
    nan_counts = study.cam_metrics[metrics].isna().sum() if metrics else pd.Series(dtype=int)
    retrained = f" + {len(controls)} control(s)" if controls else ""
    facts = pd.DataFrame([
        ("models", f"{len(study.performance)} (baseline '{BASELINE}' + {len(augmentations)} augmentation(s)"
                   f"{retrained} × {len(seeds)} seed(s))"),
        ("augmentations", ", ".join(augmentations) or "none"),
        *([("retraining controls", ", ".join(controls))] if controls else []),
        ("seeds (starting states)", ", ".join(str(s) for s in seeds)),
        ("test images", f"{n_images} ({'grey' if channels == 1 else 'colour'}, {height}×{width} px)"),
        ("classes", ", ".join(study.classes) or "–"),
        ("metrics", ", ".join(metrics) or "none"),
        ("undefined metric values (NaN)",
         ", ".join(f"{m}: {int(n)}" for m, n in nan_counts.items() if n) or "none"),
    ], columns=["item", "value"])
    short = _short_means(study.cam_metrics, metrics)
    facts.loc[len(facts)] = ("seed means resting on fewer values than seeds (NaN skipped)",
                             ", ".join(f"{m}: {n}" for m, n in short.items() if n) or "none")
    intro = (f"{_comparison_design(study.config_text, study.manifest)} For every test image, a metric compares the two models' "
             "class activation maps (CAMs; class_kld compares their class probabilities). Unless a section says "
             "otherwise, a metric value is the mean over seeds for one augmentation and one test image "
             "(aug_metrics.parquet). Undefined values (NaN, e.g. a correlation of a constant CAM) are left out "
             "of every statistic, seed means included: n_seeds in aug_metrics.parquet counts the models averaged, "
             "and a metric's mean rests on n_seeds minus that metric's NaN values (counted above).")
    present = [name for name in _STUDY_FILES if (study.root / name).is_file()]
    logs = sorted((study.root / "logs").glob("*.log")) if (study.root / "logs").is_dir() else []
    links = "".join(f'<li><a href="../{escape(name)}">{escape(name)}</a></li>' for name in present)
    links += "".join(f'<li><a href="../logs/{escape(log.name)}">logs/{escape(log.name)}</a></li>' for log in logs)
    return Section("overview", "Overview", intro, [
        writer.table(facts, "overview", "Study", "What was compared."),
        RawBlock(f'<h4>Files of this study</h4><ul class="files">{links}</ul>'),
    ])


def _findings(study: StudyFiles, writer: _Writer, ci: pd.DataFrame, n_boot: int,
              controls: Sequence[str] = ()) -> Section:
    """The page's opening: sanity warnings, then which augmentations change the CAMs most and least, and with
    retraining controls, which change them beyond the noise floor of retraining."""
    intro = ("The main results in brief. An augmentation 'changes the CAMs' when its model's maps are far from the "
             "baseline's in a metric's own direction (low similarity, high difference). Values: median over the "
             f"test images of the seed-averaged metric, with its 95% bootstrap interval ({n_boot} resamples); where "
             "two augmentations' intervals overlap their order is not clear. Details in the sections below.")
    if controls:
        intro += (f" Retraining controls ({', '.join(controls)}): models without augmentation that differ from the "
                  "baseline in one setting only. Per metric, the floor is the band from the lowest to the highest "
                  "end of their median intervals: how far from the baseline mere retraining moves the median. An "
                  "augmentation is 'beyond' the floor when its whole interval lies farther from the baseline than "
                  "the floor's far end, 'within' when no part of it does (changing the CAMs less than retraining "
                  "included), 'unclear' when it straddles that end. Controls are not ranked.")
    section = Section("findings", "Findings", intro)
    num_classes = len(study.classes) or int(study.labels.max()) + 1
    problems = analysis.sanity_problems(study.performance, num_classes, BASELINE)
    if problems:
        section.blocks.append(BannerBlock("Check these models before reading their CAMs", problems))
    ranking = analysis.change_ranking(ci, controls)
    if ranking.empty:
        section.blocks.append(TextBlock("No augmented model with a metric of declared direction: nothing to rank."))
        return section

    def cell(row) -> str:
        return f"{row['augmentation']} ({row['median']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}])"

    items = []
    overall = analysis.overall_change_ranking(ranking)
    if len(overall) > 1:
        items.append(f"Over all {ranking['metric'].nunique()} metrics (mean rank, 1 = most changed): most changed "
                     f"<b>{escape(overall.iloc[0]['augmentation'])}</b> ({overall.iloc[0]['mean_rank']:.2g}), least "
                     f"changed <b>{escape(overall.iloc[-1]['augmentation'])}</b> ({overall.iloc[-1]['mean_rank']:.2g}).")
    for metric, rows in ranking.groupby("metric", sort=False):
        first, last = rows.iloc[0], rows.iloc[-1]
        text = f"<b>{escape(metric)}</b>: most changed {escape(cell(first))}"
        if len(rows) > 1:
            text += f"; least changed {escape(cell(last))}"
            if first["overlaps_next"]:
                text += " — the first two intervals overlap"
        if controls:
            text += f"; {_floor_text(rows)}"
        items.append(text + ".")
    section.blocks.append(RawBlock('<ul class="findings">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"))
    caption = ("rank 1 = farthest from the baseline; overlaps_next = the interval overlaps that of the next-ranked "
               "augmentation.")
    if controls:
        caption += (" floor_low, floor_high = the retraining floor (lowest and highest end of the controls' median "
                    "intervals); floor = beyond / within / unclear (the interval against the floor's far end).")
    section.blocks.append(writer.table(ranking, "change_ranking", "Augmentations ranked by CAM change, per metric",
                                       caption))
    return section


def _floor_text(rows: pd.DataFrame) -> str:
    """``retraining floor [a, b]: 2 of 3 beyond, ...`` for one metric's rows of the change ranking."""
    low, high = rows["floor_low"].iloc[0], rows["floor_high"].iloc[0]
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no retraining floor (no control with a defined median)"
    counts = rows["floor"].value_counts()
    shown = ", ".join(f"{int(counts[v])} {v}" for v in analysis.FLOOR_VERDICTS if v in counts)
    return f"retraining floor [{low:.3g}, {high:.3g}]: of {len(rows)} augmentation(s), {shown}"


def _comparison_design(config_text: str | None, manifest: dict | None = None) -> str:
    """What each augmented model was compared with, from the folder's resolved config; for an ``auglens
    compare`` folder only what compare knows (a study's models, or weights files trained elsewhere)."""
    try:
        config = tomllib.loads(config_text) if config_text else {}
    except tomllib.TOMLDecodeError:
        config = {}
    if (manifest or {}).get("command") == "compare":
        if not manifest.get("study"):
            return ("The models are weights files given to auglens compare: how they were trained (initial weights, "
                    "data order, augmentations) is not known here. Each model is compared with the baseline file.")
        study = f"the study in {manifest['study']}"
    else:
        study = None
    baseline = config.get("study", {}).get("baseline")
    init = config.get("model", {}).get("init_seed")
    pretrained = config.get("model", {}).get("pretrained")
    weights = (f"the same initial weights (model.init_seed = {init})"
               if not isinstance(pretrained, str) or pretrained.lower() == "none" else
               f"the same pretrained weights (model.pretrained = \"{pretrained}\"), its classifier head drawn from "
               f"model.init_seed = {init}")
    start = (f"Every model, the baseline included, starts from {weights}; the seeds (starting states) drive the "
             "augmentations' randomness and the training's other randomness. " if init is not None else "")
    if study is not None:
        start = f"The models are those of {study}, compared by auglens compare. {start}"
    if baseline == "shared":
        text = (f"{start}Each augmented model is compared with one baseline model (no augmentation), trained with "
                "the first seed and shared by every seed (study.baseline = \"shared\").")
    elif baseline == "per_seed":
        text = (f"{start}Each augmented model is compared with the baseline model (no augmentation) trained "
                "with its own seed (study.baseline = \"per_seed\").")
    else:
        text = f"{start}Each augmented model is compared with the baseline model (no augmentation)."
    controls = [entry for entry in config.get("controls", []) if isinstance(entry, dict)]
    if controls:
        changed = "; ".join(f"{entry.get('name')} = {', '.join(map(str, entry.get('values', [])))}"
                            for entry in controls)
        text += (f" Retraining controls ({changed}): per value and seed, one more model without augmentation that "
                 "differs from the baseline in that setting alone (init_seed: the initial weights; sampling_seed: "
                 "the training order), compared with the baseline as the augmented models are.")
    return text


def _short_means(cam_metrics: pd.DataFrame, metrics: list[str]) -> dict[str, int]:
    """Per metric: how many (augmentation, image) seed means average fewer defined values than seeds."""
    if cam_metrics.empty or not metrics:
        return {}
    defined = cam_metrics[metrics].notna().groupby([cam_metrics["augmentation"], cam_metrics["image"]]).sum()
    counts = cam_metrics.groupby(["augmentation", "image"]).size()
    return {m: int((defined[m] < counts.reindex(defined.index)).sum()) for m in metrics}


def _performance(perf: pd.DataFrame, writer: _Writer, colours: dict[str, str]) -> Section:
    summary = analysis.performance_summary(perf)
    shown = pd.DataFrame({"augmentation": summary["augmentation"], "seeds": summary["n_seeds"].astype(str)})
    for metric in analysis.PERFORMANCE_METRICS:
        shown[metric] = [_mean_std(m, s) for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"])]
    intro = ("Test-set classification performance of each augmentation (thesis Figures 5.6-5.9). Bars: mean over "
             "the models trained from different seeds; error bars: sample standard deviation over seeds; dots: "
             "the individual models. All four are fractions in [0, 1], higher is better; precision, recall and "
             "F1 are macro averages over classes. The baseline ('none') is grey.")
    return Section("performance", "Classification performance", intro, [
        writer.figure(figures.performance_bars, (perf, summary, colours), "performance",
                      "Test performance per augmentation",
                      "Mean ± std over seeds (no error bar with a single seed); dots are single models."),
        writer.table(summary, "performance_summary", "Performance summary",
                     "Mean ± std over seeds; '–' where undefined (std of a single seed).", shown),
    ])


def _training(perf: pd.DataFrame, history: pd.DataFrame, writer: _Writer, colours: dict[str, str]) -> Section:
    intro = ("How each model trained (the thesis shows these curves for its candidate architectures, Figures "
             "5.1-5.5): validation accuracy, precision, recall and F1 after every epoch, and total training time. "
             "Curves that end far apart mean the augmentation changed how well or how fast the model learned.")
    if "train_seconds" not in perf.columns:  # auglens compare: checkpoints brought, nothing trained here
        return Section("training", "Training", intro, [TextBlock(
            "No training record: these models were trained elsewhere and compared with `auglens compare`.")])
    blocks = []
    if not history.empty:
        blocks.append(writer.figure(figures.validation_curves, (history, colours), "validation_curves",
                                    "Validation metrics per epoch",
                                    "One line per model: colour = augmentation, line style = seed. The kept "
                                    "checkpoint is the epoch with the best validation accuracy."))
    blocks.append(writer.figure(figures.training_time_bars, (perf, colours), "training_time",
                                "Training time per model", "Wall-clock seconds over all epochs (train_seconds)."))
    times = analysis.training_time_summary(perf)
    shown = pd.DataFrame({"augmentation": times["augmentation"], "seeds": times["n_seeds"].astype(str),
                          "training time (s)": [_mean_std(m, s) for m, s in
                                                zip(times["train_seconds_mean"], times["train_seconds_std"])],
                          "best epoch": [_mean_std(m, s, 1) for m, s in
                                         zip(times["best_epoch_mean"], times["best_epoch_std"])]})
    blocks.append(writer.table(times, "training_summary", "Training time and best epoch",
                               "Mean ± std over seeds.", shown))
    return Section("training", "Training", intro, blocks)


def _metric_sections(aug_metrics: pd.DataFrame, maps: dict[str, pd.DataFrame], writer: _Writer,
                     colours: dict[str, str], augmentations: list[str], metrics: list[str],
                     floors: pd.DataFrame | None = None) -> Section:
    intro = ("One subsection per metric. Boxplot: distribution over the test images of the seed-averaged metric "
             "for each augmentation (box = quartiles, line = median, whiskers = 1.5 × IQR, dots = outliers; NaN "
             "left out and counted under each name). Correlation map: Pearson r between two augmentations' "
             "values over the test images (pairwise complete images). A high r means the two augmentations "
             "move the CAMs away from the baseline's on the same images; the colour scale is fixed to [-1, 1] "
             "so maps of different metrics can be compared.")
    if floors is not None:
        intro += (" The grey band on each boxplot is the retraining floor: from the lowest to the highest end of "
                  "the retraining controls' median intervals (read it against the boxes' median lines). The "
                  "controls are in the summary tables, not in the boxplots or the correlation maps.")
    section = Section("metrics", "CAM similarity metrics", intro)
    if not augmentations or not metrics:
        section.blocks.append(TextBlock("No augmented model or no metric column: nothing to show."))
        return section
    summary = analysis.metric_summary(aug_metrics, metrics)
    for metric in metrics:
        box_no, corr_no = _THESIS_FIGURES.get(metric, ("–", "–"))
        wide = analysis.metric_matrix(aug_metrics, metric, augmentations)
        rows = summary[summary["metric"] == metric].drop(columns=["metric", "higher_is_better"])
        arguments: tuple = (wide, metric, colours)
        note = ""
        if floors is not None and metric in set(floors["metric"]):
            floor = floors.set_index("metric").loc[metric]
            arguments += ((float(floor["floor_low"]), float(floor["floor_high"])),)
            note = " Grey band: the retraining floor (the controls' median intervals)."
        child = Section(f"metric-{metric}", metric, f"{_description(metric)} {_direction_text(metric)}", [
            writer.figure(figures.metric_boxplot, arguments, f"boxplot_{metric}",
                          f"{metric}: distribution per augmentation",
                          f"Seed-averaged values over the test images (thesis Fig. {box_no}).{note}"),
            writer.figure(figures.correlation_heatmap, (maps[metric], metric), f"correlation_{metric}",
                          f"{metric}: correlation between augmentations",
                          f"Pearson r over test images between the seed-averaged values (thesis Fig. {corr_no}); "
                          "lower triangle of the symmetric map; 'n/a' where undefined."),
            writer.table(rows, f"summary_{metric}", f"{metric}: summary per augmentation",
                         "n = defined values, q25/q75 = quartiles, over the test images."),
        ])
        section.children.append(child)
    long = pd.DataFrame([(metric, a, b, corr.loc[a, b]) for metric, corr in maps.items()
                         for a in corr.index for b in corr.columns], columns=["metric", "aug_a", "aug_b", "r"])
    writer.csv(long, "correlation_maps")
    writer.csv(summary, "metric_summary")
    return section


def _pairs(maps: dict[str, pd.DataFrame], writer: _Writer, k: int, n_augmentations: int,
           rank_by: str = "signed") -> Section:
    ranking = ("Pairs are ranked by the signed correlation r, as the thesis's tables: the 'least correlated' "
               "are those with the lowest r, strongly anti-correlated pairs first (auglens report "
               "--pair-rank absolute ranks by |r| instead)." if rank_by == "signed" else
               "Pairs are ranked by |r|: the 'least correlated' are those closest to 0, and strong negative "
               "correlations count as strong (the thesis ranks by the signed r).")
    intro = (f"Thesis Tables 5.1 and 5.2: in each metric's correlation map take the {k} most and the {k} least "
             "correlated pairs of augmentations (unordered, diagonal excluded), then count how often each pair "
             "appears over all metrics. Pairs that recur suggest augmentations with a shared (or opposed) "
             "effect on the CAMs. k is capped at half the number of pairs per map so that the two lists never "
             f"share a pair. {ranking}")
    section = Section("pairs", "Most and least correlated pairs", intro)
    n_pairs = n_augmentations * (n_augmentations - 1) // 2
    if n_pairs < 2:
        section.blocks.append(TextBlock(f"Skipped: this study has {n_augmentations} augmentation(s), i.e. "
                                        f"{n_pairs} pair(s); ranking pairs needs at least 3 augmentations."))
        return section
    for strongest, name, title in ((True, "pairs_strongest", "Most strongly correlated pairs (Table 5.1)"),
                                   (False, "pairs_weakest", "Most weakly correlated pairs (Table 5.2)")):
        table = analysis.pair_frequencies(maps, k, strongest, rank_by)
        shown = table[["pair", "count", "metrics"]]
        section.blocks.append(writer.table(table, name, title, f"count = number of metrics (of {len(maps)}) in "
                                           "whose map the pair was among the extremes.", format_frame(shown)))
    return section


def _clustering(maps: dict[str, pd.DataFrame], writer: _Writer, n_augmentations: int) -> Section:
    intro = ("Beyond the thesis: the augmentations clustered from each metric's correlation map (distance 1 − r, "
             "average linkage). Augmentations joined at a small distance change the CAMs on the same images; "
             "a NaN correlation counts as r = 0. Read it together with the pair tables: the thesis's "
             "'clusters of behaviour' appear here as subtrees.")
    section = Section("clustering", "Clustering of augmentations", intro)
    if n_augmentations < 2 or not maps:
        section.blocks.append(TextBlock(f"Skipped: clustering needs at least 2 augmentations; this study has "
                                        f"{n_augmentations}."))
        return section
    clusters = {metric: analysis.cluster_augmentations(corr) for metric, corr in maps.items()}
    leaves = pd.DataFrame({"metric": list(clusters),
                           "leaf order": [" | ".join(c.leaves) for c in clusters.values()]})
    section.blocks += [writer.figure(figures.dendrograms, (clusters,), "dendrograms", "Dendrograms per metric",
                                     "Height of a join = average 1 − r between the two groups."),
                       writer.table(leaves, "cluster_leaf_order", "Leaf order",
                                    "Augmentations in dendrogram order (neighbours are most alike).")]
    return section


def faithfulness_summary(faithfulness: pd.DataFrame | None, aug_metrics: pd.DataFrame, cka: pd.DataFrame | None,
                         augmentations: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per augmentation (the baseline first): each faithfulness score's mean over its models (each model's mean over
    the scored images) with its change from the baseline's, the median CAM change (seed-averaged metrics), and
    the CKA with the baseline at the last compared layer (mean over seeds)."""
    from auglens.metrics.faithfulness import FAITHFULNESS_MEASURES

    known = [c for name in FAITHFULNESS_MEASURES.names() for c in FAITHFULNESS_MEASURES.build(name).columns]
    scores = [c for c in known if faithfulness is not None and c in faithfulness.columns]
    rows = []
    for augmentation in [BASELINE, *augmentations]:
        row: dict[str, object] = {"augmentation": augmentation}
        if scores:
            own = faithfulness[faithfulness["augmentation"].astype(str) == augmentation]
            per_model = own.groupby("seed")[scores].mean()
            row["models"] = len(per_model)
            for column in scores:
                row[column] = float(per_model[column].mean()) if len(per_model) else np.nan
        own_metrics = aug_metrics[aug_metrics["augmentation"].astype(str) == augmentation]
        for metric in metrics:
            row[f"{metric} median"] = float(own_metrics[metric].median()) if len(own_metrics) else np.nan
        if cka is not None and len(cka):
            last = cka[cka["layer_index"] == cka["layer_index"].max()]
            values = last[last["augmentation"].astype(str) == augmentation]["cka"]
            row["cka last layer"] = float(values.mean()) if len(values) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in scores:
        table[f"{column} change"] = table[column] - table.loc[0, column]
    return table


def _model_analyses(study: StudyFiles, writer: _Writer, augmentations: list[str], metrics: list[str]) -> Section:
    intro = ("Beyond the thesis: are the compared maps faithful to their models, and what changed inside the "
             "networks? Faithfulness (model_faithfulness.parquet, docs/methodology.md) scores each model's own CAMs "
             "by how its probability for the CAM's class reacts when the pixels the map ranks high are removed: "
             "deletion (area under the curve; lower = more faithful), insertion (higher = more faithful) and ROAD "
             "(road_combined; higher = more faithful), on a stratified subset of the test images. A CAM change "
             "between two models means more when both maps are faithful. CKA (model_cka.csv) compares the baseline's "
             "and each augmented model's activations on the same test images at every block: 1 = the same "
             "representation up to rotation and scale.")
    section = Section("model-analyses", "Faithfulness and representation similarity", intro)
    cka = study.cka
    aug_cka = None
    if cka is not None and len(cka):
        aug_cka = analysis.cka_seed_average(cka)
    summary = faithfulness_summary(study.faithfulness, study.aug_metrics, cka, augmentations, metrics)
    section.blocks.append(writer.table(
        summary, "faithfulness_summary", "Faithfulness beside CAM change, per augmentation",
        "Faithfulness columns: mean over the augmentation's models of each model's mean over the scored images; "
        "'change' = minus the baseline's. '<metric> median': median over the test images of the seed-averaged CAM "
        "metric against the baseline (as in the boxplots). 'cka last layer': CKA with the baseline at the last "
        "compared layer, mean over seeds."))
    if aug_cka is not None:
        estimator = str(cka["estimator"].iloc[0])
        section.blocks.append(writer.figure(figures.cka_heatmap, (aug_cka, augmentations, estimator), "cka_heatmap",
                                            "CKA with the baseline, layer × augmentation",
                                            f"Linear CKA ({estimator} HSIC) between the baseline's and each "
                                            "augmented model's activations on the same test images, mean over "
                                            "seeds (model_cka.csv per seed). Lower = the augmentation changed that "
                                            "layer's representation more."))
        section.blocks.append(writer.table(aug_cka, "cka_by_layer", "CKA per augmentation and layer",
                                           "Mean and standard deviation over seeds (aug_cka.csv)."))
    return section


def _first_models(perf: pd.DataFrame) -> dict[str, pd.Series]:
    """The first row of ``performance.csv`` per augmentation: whose CAM set the grids show."""
    return {str(a): rows.iloc[0] for a, rows in perf.groupby("augmentation", sort=False)}


def _extremes(study: StudyFiles, writer: _Writer, augmentations: list[str], metrics: list[str]) -> Section:
    intro = ("Thesis Appendix A: for every metric, the test image whose seed-averaged values have the highest mean "
             "across augmentations, and the one with the highest standard deviation across augmentations (the "
             "image the augmentations disagree on most). Each row shows the image, then the CAM of the baseline "
             "and of every augmentation overlaid on it (bright = high activation), with each model's predicted "
             "class (✓ correct, ✗ wrong) and its value of the metric. A CAM belongs to one model, so the first "
             "seed's model of every augmentation is shown (named in the column titles).")
    section = Section("extremes", "Extreme images", intro)
    extremes = analysis.extreme_images(study.aug_metrics, metrics)
    shown = format_frame(extremes)
    section.blocks.append(writer.table(extremes, "extreme_images", "Extreme images per metric",
                                       "value = the statistic that picked the image (mean or std across "
                                       "augmentations, over seed-averaged values).", shown))
    if extremes.empty:
        return section
    firsts = _first_models(study.performance)
    if BASELINE not in firsts:
        raise ValueError(f"performance.csv has no baseline model (augmentation '{BASELINE}'); its "
                         f"augmentations are {sorted(firsts)}")
    shown_models = [BASELINE] + [a for a in augmentations if a in firsts]
    cam_sets = {a: load_cam_set(study.root, str(firsts[a]["cam_set"])) for a in shown_models}
    size = tuple(int(v) for v in study.images.shape[-2:])
    cm = study.cam_metrics
    for metric in metrics:
        picked = extremes[extremes["metric"] == metric]
        if picked.empty:
            continue
        rows = [GridRow(r.statistic, int(r.image), int(r.label), float(r.value)) for r in picked.itertuples()]
        indices = [row.image for row in rows]
        columns = []
        for a in shown_models:
            model = firsts[a]
            values = None
            if a != BASELINE:
                own = cm[(cm["augmentation"] == a) & (cm["seed"] == model["seed"])].set_index("image")[metric]
                values = [float(own.get(i, np.nan)) for i in indices]
            title = f"{model['model']} (baseline)" if a == BASELINE else str(model["model"])
            columns.append(GridColumn(title, display_maps(cam_sets[a].maps[indices], size),
                                      [int(cam_sets[a].predictions[i]) for i in indices], values))
        section.blocks.append(writer.figure(extreme_image_grid,
                                            (metric, rows, study.images[indices], study.classes, columns),
                                            f"cams_{metric}", f"{metric}: extreme images",
                                            "Image, then the CAM of each model (first seed per augmentation) "
                                            "overlaid; under each panel the predicted class and that model's "
                                            "metric value for the image."))
    return section


def _displayed(paths: list[str], images: np.ndarray, maps: list, size: tuple[int, int]) -> tuple:
    """The arguments of :func:`write_browser_strips`: the low-resolution maps upsampled for display, here in
    the building process (torch's OpenMP thread pool hangs in a forked worker)."""
    return paths, images, [display_maps(model_maps, size) for model_maps in maps]


#: CAM-browser images per deferred write task (and per key: a changed image redraws its chunk).
_BROWSER_CHUNK = 125


def _browser(study: StudyFiles, writer: _Writer, augmentations: list[str], metrics: list[str], limit: int) -> Section:
    intro = ("Every test image (up to the first {limit}) with the baseline's CAM beside each augmented model's "
             "(first seed's model per augmentation), each model's prediction and its metric values against the "
             "baseline for that image. Filter by class, by which of the baseline and the chosen model are "
             "correct and by a range of one of the chosen model's metrics, and order by that metric. Images load "
             "only for the page on screen.")
    section = Section("browser", "CAM browser", intro.format(limit=limit))
    firsts = _first_models(study.performance)
    if limit <= 0 or not augmentations or BASELINE not in firsts:
        section.blocks.append(TextBlock("No augmented model (or the browser is turned off): nothing to browse."))
        return section
    shown = [BASELINE] + [a for a in augmentations if a in firsts]
    n = min(limit, len(study.labels))
    size = tuple(int(v) for v in study.images.shape[-2:])
    cam_sets = {a: load_cam_set(study.root, str(firsts[a]["cam_set"])) for a in shown}
    # Low-resolution maps key the strips (cheap); only the chunks that are redrawn are upsampled.
    maps = {a: cam_sets[a].maps[:n].float() for a in shown}
    predictions = {a: cam_sets[a].predictions[:n] for a in shown}
    cm = study.cam_metrics
    values = {}
    for a in shown[1:]:
        own = cm[(cm["augmentation"] == a) & (cm["seed"] == firsts[a]["seed"])].set_index("image")
        values[a] = own.reindex(range(n))[metrics].to_numpy(dtype=float).tolist()  # Python floats: fast to round
    writer.browser.mkdir(parents=True, exist_ok=True)
    # The strips are drawn and written by render(), in chunks, beside the figures: they are a thousand files.
    for start in range(0, n, _BROWSER_CHUNK):
        part = range(start, min(n, start + _BROWSER_CHUNK))
        paths = [writer.browser / f"image_{i:05d}.png" for i in part]
        writer.write_later(write_browser_strips, ([str(p) for p in paths], study.images[start : part.stop],
                                                  [maps[a][start : part.stop] for a in shown], size), paths,
                           prepare=_displayed)
    images = []
    for i in range(n):
        name = f"image_{i:05d}.png"
        images.append({"index": i, "label": int(study.labels[i]), "src": f"browser/{name}",
                       "preds": [int(predictions[a][i]) for a in shown],
                       "values": [[None if v != v else round(v, 5) for v in values[a][i]]  # v != v: NaN
                                  for a in shown[1:]]})
    classes = study.classes or [str(c) for c in range(int(study.labels.max()) + 1)]
    models = [f"{firsts[a]['model']} (baseline)" if a == BASELINE else str(firsts[a]["model"]) for a in shown]
    section.blocks.append(BrowserBlock({"classes": classes, "models": models, "metrics": metrics,
                                        "images": images, "page_size": 12}))
    return section


def _segments(cam_metrics: pd.DataFrame, writer: _Writer, augmentations: list[str], metrics: list[str]) -> Section:
    intro = ("Thesis Appendix C: CAMs are computed for each model's predicted class, so two models that predict "
             "different classes may have different CAMs for that reason alone. Each (augmented model, test image) "
             "is put in one of four segments by whether the baseline and the augmented model classified it "
             "correctly; the boxplots show each metric per segment (per model and seed, not seed-averaged). "
             "Similar boxes across segments mean correctness does not drive the metric.")
    section = Section("segments", "Segmentation by correctness", intro)
    if cam_metrics.empty:
        section.blocks.append(TextBlock("No augmented model: nothing to segment."))
        return section
    counts = analysis.segment_counts(cam_metrics)
    section.blocks.append(writer.table(counts, "segment_counts", "Rows per segment",
                                       "Pooled over seeds: (seed, image) rows per augmentation."))
    by_seed = analysis.segment_counts(cam_metrics, by_seed=True)
    writer.csv(by_seed, "segment_counts_by_seed")
    for metric in metrics:
        columns = cam_metrics[[*_SEGMENT_KEYS, metric]]  # only what the figure needs travels to the worker
        section.blocks.append(writer.figure(figures.segmented_boxplot, (columns, metric, augmentations),
                                            f"segments_{metric}", f"{metric} by correctness segment",
                                            "Per-model values, all seeds; numbers under the boxes are rows per "
                                            "segment with a defined value."))
    return section


def _confidence(table: pd.DataFrame, writer: _Writer, metrics: list[str], n_boot: int, seed: int) -> Section:
    intro = (f"Beyond the thesis: how precisely each boxplot's median is known. 95% percentile-bootstrap "
             f"confidence interval of the median of the seed-averaged values over the test images ({n_boot} "
             f"resamples of the images, seed {seed}). Augmentations whose intervals do not overlap have clearly "
             "different typical values; overlapping intervals are inconclusive (see the permutation tests).")
    section = Section("confidence", "Confidence intervals of the medians", intro)
    if table.empty:
        section.blocks.append(TextBlock("No values: nothing to estimate."))
        return section
    cells = table.assign(cell=[("–" if np.isnan(m) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]")
                               for m, lo, hi in zip(table["median"], table["ci_low"], table["ci_high"])])
    shown = cells.pivot(index="augmentation", columns="metric", values="cell")
    shown = shown.reindex(index=list(dict.fromkeys(table["augmentation"])), columns=metrics).reset_index()
    section.blocks.append(writer.table(table, "median_ci", "Median [95% CI] per augmentation and metric",
                                       "Rows: augmentations (and retraining controls, control:...); columns: "
                                       "metrics.", shown.fillna("–")))
    return section


def _permutation(aug_metrics: pd.DataFrame, writer: _Writer, metrics: list[str], n_perm: int, seed: int,
                 n_augmentations: int) -> Section:
    intro = ("Beyond the thesis: does the choice between two augmentations change a metric? Two-sided paired "
             "permutation test per pair of augmentations and metric, on the seed-averaged values of the same "
             "test images. Statistic: difference of the means (= mean paired difference); the null distribution "
             f"swaps the two values of each image at random ({n_perm} random swap patterns, seed {seed}; exact "
             "enumeration for tiny samples). p-values are Holm-adjusted over the pairs of each metric. Each cell "
             "shows the adjusted p and, in brackets, the augmentation whose values are closer to the baseline.")
    section = Section("permutation", "Permutation tests between augmentations", intro)
    if n_augmentations < 2:
        section.blocks.append(TextBlock(f"Skipped: needs at least 2 augmentations; this study has {n_augmentations}."))
        return section
    table = writer.computed("permutation_tests", analysis.permutation_test_table, aug_metrics=aug_metrics,
                            metrics=metrics, n_perm=n_perm, seed=seed)
    pair = table["aug_a"] + " – " + table["aug_b"]
    cells = table.assign(pair=pair, cell=[("–" if np.isnan(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.2f}")
                                            + (f" ({s})" if s and p < 0.05 else ""))
                                           for p, s in zip(table["p_holm"], table["more_similar"])])
    shown = cells.pivot(index="pair", columns="metric", values="cell")
    shown = shown.reindex(index=list(dict.fromkeys(pair)), columns=metrics).reset_index().fillna("–")
    section.blocks.append(writer.table(table, "permutation_tests", "Holm-adjusted p per pair and metric",
                                       "In brackets (only where p < 0.05): the augmentation closer to the "
                                       "baseline. The CSV has the statistic, unadjusted p and means/medians.", shown))
    return section

"""Bring your own checkpoints: CAM sets and CAM metrics of trained models against a baseline, no training.

``compare_checkpoints`` loads each weights file into the named architecture, computes its CAM set on the
test set of the given data (a study config, or a data set name with default settings), and writes the
same tables as ``auglens run``: ``performance.csv``, ``cam_metrics.parquet`` (each model against the
baseline; ``augmentation`` holds the model's name, ``seed`` is 0), ``aug_metrics.parquet`` and, with
``all_pairs``, ``pair_metrics.parquet`` (every pair of models, columns ``model_a``/``model_b``).

Before any work, the config passes :mod:`auglens.preflight`'s checks and every weights file is matched
against the architecture (built on the meta device): a file that does not fit is named with a summary of
its missing, unexpected and mis-shaped tensors, all files at once.

Weights are never unpickled: ``.safetensors`` files are read with safetensors, anything else with
``torch.load(weights_only=True)``, which refuses arbitrary objects.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from auglens import config as cfg
from auglens.augment.base import BASELINE
from auglens.data.prepared import prepare_data
from auglens.metrics import resolve_metrics
from auglens.errors import UserError
from auglens.store import ArtifactStore, write_text_atomic
from auglens.study.jobs import compute_cam_set, map_side, pair_metric_frame
from auglens.study.plan import data_spec
from auglens.study.runtime import configure_runtime
from auglens.study.tables import seed_average, write_csv, write_parquet, write_test_set


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from ``.safetensors`` or a ``torch.save`` file (plain state dict, or under 'state_dict'/'model')."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError subclasses and RuntimeError here
        raise UserError(f"{path}: not loadable as plain weights ({error}); save a state_dict or .safetensors") from error
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a state dict of tensors (name -> tensor), got {type(obj).__name__}")
    return obj


def _examples(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def checkpoint_mismatch(path: str | Path, state: dict[str, torch.Tensor], model: torch.nn.Module) -> str | None:
    """None when ``state`` fits ``model`` exactly; else one line naming the file and summarising the mismatch."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k} {got[k]} vs {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} tensors missing ({_examples(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape, file vs model ({_examples(shapes, 2)})")
    hint = "check --arch, model.params and the data set (number of classes, grey or colour)"
    if unexpected and all(k.startswith("module.") for k in unexpected):
        hint = "its keys start with 'module.' (saved from DataParallel/DDP): save model.module.state_dict()"
    return f"{path}: does not fit {type(model).__name__}: {'; '.join(parts)}; {hint}"


def check_checkpoints(paths: list[Path], arch: str, params: dict, num_classes: int, in_channels: int) -> None:
    """Raise one :class:`UserError` naming every weights file that is unreadable or does not fit the model."""
    from auglens.models import build_model

    with torch.device("meta"):
        model = build_model(arch, num_classes, in_channels, **params)
    problems = []
    for path in paths:
        try:
            problem = checkpoint_mismatch(path, load_state_dict(path), model)
        except UserError as error:
            problem = str(error)
        if problem:
            problems.append(problem)
    if problems:
        raise UserError(f"{len(problems)} of {len(paths)} checkpoint(s) cannot be compared:\n"
                        + "\n".join(f"  - {p}" for p in problems))


def _config_for(arch: str, data: str, overrides: list[str]) -> cfg.Config:
    if data.endswith(".toml") or Path(data).is_file():
        config = cfg.load(data, overrides)
    else:
        config = cfg.from_dict(cfg.apply_overrides({"data": {"name": data}, "model": {"input_size": None}},
                                                   overrides), f"--data {data}")
    config.model.architecture = arch
    errors, config = config.validate()
    if errors:
        raise cfg.ConfigError(errors, "compare")
    return config


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def compare_checkpoints(arch: str, baseline: str | Path, models: list[str | Path], data: str, out: str | Path,
                        all_pairs: bool = False, overrides: list[str] | None = None, progress: bool = True,
                        provenance: dict | None = None) -> str:
    """Compute CAM sets and metrics of ``models`` against ``baseline``; returns a one-line summary.

    ``provenance`` (:func:`auglens.provenance.run_provenance`, default: this process's) goes into the manifest.
    """
    import time

    from auglens.provenance import data_provenance, device_description, file_sha256, record_run, run_provenance

    run = provenance or run_provenance(overrides=overrides)
    started = time.perf_counter()
    from tqdm.auto import tqdm

    from auglens.metrics import classification_report
    from auglens.models import build_model

    from auglens.preflight import preflight

    config = _config_for(arch, data, overrides or [])
    checked = preflight(config, "compare")
    paths = [Path(baseline), *map(Path, models)]
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise UserError(f"checkpoint file names must differ (their stems name the models): {names}")
    source = checked.source
    if source is not None and source.num_classes and source.in_channels:
        check_checkpoints(paths, arch, config.model.params, source.num_classes, source.in_channels)
    device = configure_runtime(config.runtime)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = ArtifactStore(out / "artifacts")
    spec = data_spec(config)
    prepared = prepare_data(spec)
    if source is None or not (source.num_classes and source.in_channels):
        check_checkpoints(paths, arch, config.model.params, prepared.num_classes, prepared.in_channels)
    c = config.cam
    metrics = resolve_metrics(config.metrics)
    input_size = config.model.input_size
    size = map_side(input_size, prepared)

    cam_sets = {}
    for path, name in tqdm(list(zip(paths, names)), desc="cams", unit="model", disable=not progress):
        key = cfg.stable_hash({"weights": _file_digest(path), "arch": arch, "params": config.model.params,
                               "data": str(spec), "input": input_size, "cam": [c.method, c.target_layer,
                                                                               c.target, c.storage_dtype]})
        if not store.sound("cams", key, "safetensors"):
            model = build_model(arch, prepared.num_classes, prepared.in_channels, **config.model.params)
            model.load_state_dict(load_state_dict(path))
            cam_set = compute_cam_set(model.to(device).eval(), prepared, input_size, c.method, c.target_layer,
                                      c.target, c.batch_size, c.storage_dtype, device)
            store.save_tensors("cams", key, cam_set, metadata={"model": name, "method": c.method,
                                                               "input_size": str(size)})
        cam_sets[name] = (key, store.load_tensors("cams", key))

    def pair(a, b):
        return pair_metric_frame(cam_sets[a][1], cam_sets[b][1], prepared.test.labels, size, metrics,
                                 config.runtime.metric_batch_size, device)

    rows = []
    for name in names[1:]:
        frame = pair(names[0], name)
        frame.insert(0, "seed", 0)
        frame.insert(0, "augmentation", name)
        rows.append(frame)
    cam_metrics = pd.concat(rows, ignore_index=True)
    write_parquet(cam_metrics, out / "cam_metrics.parquet")
    write_parquet(seed_average(cam_metrics), out / "aug_metrics.parquet")
    if all_pairs:
        pairs = []
        for a, b in itertools.combinations(names, 2):
            frame = pair(a, b).rename(columns={"baseline_pred": "pred_a", "model_pred": "pred_b"})
            frame.insert(0, "model_b", b)
            frame.insert(0, "model_a", a)
            pairs.append(frame)
        write_parquet(pd.concat(pairs, ignore_index=True), out / "pair_metrics.parquet")

    performance = []
    for path, name in zip(paths, names):
        key, cam_set = cam_sets[name]
        report = classification_report(cam_set["logits"].argmax(1), prepared.test.labels, prepared.num_classes)
        performance.append({"model": name, "augmentation": BASELINE if name == names[0] else name, "seed": 0,
                            **{k: float(report[k]) for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")},
                            "checkpoint": str(path),
                            "cam_set": str(Path(store.path("cams", key, "safetensors")).relative_to(out))})
    write_csv(pd.DataFrame(performance), out / "performance.csv")
    write_test_set(out, prepared)
    write_text_atomic(out / "config.toml", cfg.dump_toml(replace(config)))
    previous = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else None
    manifest = {"command": "compare", "baseline": str(baseline), "models": [str(p) for p in models],
                "all_pairs": all_pairs, "auglens": run["auglens"], "git_commit": run["git_commit"],
                "device": device_description(device), "data_source": data_provenance(source),
                "checkpoints_sha256": {str(p): file_sha256(p) for p in paths},
                **record_run(previous, run, {"total_seconds": time.perf_counter() - started})}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return f"compared {len(names) - 1} model(s) with {names[0]} on {len(prepared.test)} test images -> {out}"

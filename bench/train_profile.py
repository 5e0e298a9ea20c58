"""Where a study's training step spends its time, part by part, against a plain PyTorch loop of the same model.

Loads a study config (default: the embedded default study, ``examples/fashion-mnist-quick.toml``), prepares its
data as the study does (config -> data spec -> ``prepare_data``), builds each model's trainee as
:func:`auglens.train.loop.train_model` does (same spec, initial weights, optimizer, memory format, precision)
and times training steps three ways, interleaved within each repeat:

- ``step``: the epoch loop's body as :func:`auglens.train.epochs.run_epochs` runs it (learning rate, ``_batch``,
  the trainee's ``step``, the loss sums), unchanged: the figure the ratios use;
- the same body split into parts, each closed by a clock lap (after a device synchronisation on CUDA):
  ``assembly`` (batch indexing, copies to the device and to float, gathering the copies to augment and writing
  them back), ``standard`` (the standard crop and flip, when configured), ``augment`` (sample keys and the
  augmentation call), ``model_input`` (resize, normalise, memory format), ``forward``, ``loss``, ``backward``
  (zero_grad and backward) and ``optimizer`` (its step); ``rest`` is that instrumented step minus its parts:
  the learning-rate update, the loss bookkeeping and the interpreter between the parts. ``lapped / step`` says
  how far the laps themselves move the step (about 1 on a CPU; above 1 on a GPU, where they serialise);
- ``plain``: the reference, a plain PyTorch loop of a fresh copy of the same model from the same initial
  weights, same batch size, optimizer, memory format and autocast, on the same training images already
  normalised as float tensors in memory (on the device), consecutive slices, ``F.cross_entropy(model(x), y)``,
  ``zero_grad``, ``backward``, ``step``, no augmentation.

Each model's steps take the first ``--steps`` batches of its epoch-0 training order (for an augmented model
about half of each batch are augmented copies, as in the study). Figures are per step, the best of
``--repeats`` interleaved repeats (as ``_common.best_time``). The mirrored step is checked against the real
one before timing: the same batch tensors and, after one step from the same weights, the same weights.

With ``--study`` it also runs ``auglens run --no-report`` on the config (same overrides) into a temporary folder
and reads the stage timings the run recorded in its manifest (``timings_seconds``: train, cam, metric; the
train stage includes each epoch's validation), then times ``auglens report`` on the folder (the run does not
record the report's time), each in a fresh interpreter.

    python bench/train_profile.py [--config examples/fashion-mnist-quick.toml] [--images N] [--steps 20]
        [--repeats 5] [--augmentation NAME ...] [--threads N] [--device cuda] [--study] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import describe_device, print_table, synchronize, write_json  # noqa: E402

from auglens import config as cfg  # noqa: E402
from auglens.augment import build_augmentation, sample_keys  # noqa: E402
from auglens.augment.standard import standard_augmentation  # noqa: E402
from auglens.data.prepared import model_input, prepare_data  # noqa: E402
from auglens.study.plan import BASELINE, data_spec, train_spec  # noqa: E402
from auglens.study.runtime import configure_runtime, cpu_description  # noqa: E402
from auglens.train.epochs import (DEVICE_RESIDENT_BYTES, _batch, augment_copies, augmentation_input,  # noqa: E402
                                  batch_input, gather_batch, learning_rate)
from auglens.train.loop import _OneModel, _optimizer, cross_entropy_pair, initial_model  # noqa: E402
from auglens.train.order import training_order  # noqa: E402

PARTS = ("assembly", "standard", "augment", "model_input", "forward", "loss", "backward", "optimizer")


class _Clock:
    """Seconds per named part: ``lap(name)`` charges the time since the last ``lap`` or ``start`` to ``name``;
    time between a lap and the next ``start`` is charged to nothing (the caller's ``rest``)."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, dict.fromkeys(PARTS, 0.0)
        self.mark = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self.mark = time.perf_counter()

    def lap(self, name: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.seconds[name] += now - self.mark
        self.mark = now


def _lapped_batch(spec, data, train_images, train_labels, positions, epoch, augmentation, device, clock):
    """:func:`auglens.train.epochs._batch` from the same parts, with laps; checked against it before timing."""
    clock.start()
    source, images, labels, partner, lam, is_copy = gather_batch(data, train_images, train_labels, positions, device)
    clock.lap("assembly")
    if spec.standard_augmentation != "none":
        images = standard_augmentation(spec.standard_augmentation, images,
                                       sample_keys(spec.seed, epoch, positions).to(device))
        clock.lap("standard")
    images = augmentation_input(images, spec.augmentation_resolution, spec.input_size)
    clock.lap("model_input")
    if augmentation is not None and bool(is_copy.any()):
        augment_copies(spec, epoch, augmentation, source, images, labels, partner, lam, is_copy, device)
        clock.lap("augment")
    x = batch_input(spec, data, images)
    clock.lap("model_input")
    return x, labels, partner, lam


def _lapped_step(trainee: _OneModel, batch, clock: _Clock):
    """:meth:`auglens.train.loop._OneModel.step` with laps (``clock`` already started by the batch)."""
    x, labels, partner, lam = batch
    clock.start()
    with trainee.autocast:
        logits = trainee.forward(x).float()
    clock.lap("forward")
    loss_a, loss_b = cross_entropy_pair(logits, labels, partner)
    loss = (lam * loss_a + (1 - lam) * loss_b).mean()
    clock.lap("loss")
    trainee.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clock.lap("backward")
    trainee.optimizer.step()
    clock.lap("optimizer")
    majority = torch.where(lam >= 0.5, loss_a, loss_b).detach().sum()
    return loss.detach().reshape(1), majority.reshape(1)


class _Model:
    """One model of the study as the epoch loop trains it: its spec, trainee, augmentation and batches."""

    def __init__(self, spec, data, device, steps: int):
        self.spec, self.data, self.device = spec, data, device
        self.trainee = _OneModel(spec, data, device)
        self.trainee.train()  # as run_epochs does at every epoch
        self.augmentation = build_augmentation(spec.augmentation, run_seed=spec.seed, **dict(spec.augmentation_params))
        self.images, self.labels = data.train.images, data.train.labels
        if device.type == "cuda" and self.images.numel() <= DEVICE_RESIDENT_BYTES:
            self.images, self.labels = self.images.to(device), self.labels.to(device)
        augmented = self.augmentation is not None
        every = augmented and spec.augment_every_sample
        self.order = training_order(len(data.train), augmented and not every, spec.sampling_seed, 0,
                                    spec.reshuffle_each_epoch)
        if every:
            self.order = self.order + len(data.train)
        # Full batches only, as the plain loop's, so every timed step has the same size.
        starts = list(range(0, len(self.order) - spec.batch_size + 1, spec.batch_size)) or [0]
        self.starts = [starts[i % len(starts)] for i in range(steps)]

    def positions(self, start: int) -> torch.Tensor:
        return self.order[start : start + self.spec.batch_size]

    def lr(self, start: int) -> None:
        for group in self.trainee.optimizer.param_groups:
            group["lr"] = learning_rate(self.spec, 0, start / len(self.order))

    def steps(self, starts: list[int] | None = None, clock: _Clock | None = None) -> float:
        """The epoch loop's body over the batches (default: all of ``self.starts``), as run_epochs runs it, or
        with ``clock`` the same body with a lap after every part (its seconds per part in ``clock.seconds``);
        seconds."""
        total_loss = torch.zeros(1, dtype=torch.float64, device=self.device)
        majority_loss = torch.zeros(1, dtype=torch.float64, device=self.device)
        synchronize(self.device)
        started = time.perf_counter()
        for start in self.starts if starts is None else starts:
            self.lr(start)
            positions = self.positions(start)
            args = (self.spec, self.data, self.images, self.labels, positions, 0, self.augmentation, self.device)
            if clock is None:
                losses, majority = self.trainee.step([_batch(*args)])
            else:
                losses, majority = _lapped_step(self.trainee, _lapped_batch(*args, clock), clock)
            total_loss += losses * len(positions)
            majority_loss += majority
        synchronize(self.device)
        return time.perf_counter() - started

    def check_mirror(self) -> None:
        """The lapped batch and step compute what the real ones do: equal tensors, then equal weights after one
        step of two trainees from the same initial weights."""
        positions = self.positions(self.starts[0])
        real = _batch(self.spec, self.data, self.images, self.labels, positions, 0, self.augmentation, self.device)
        mirrored = _lapped_batch(self.spec, self.data, self.images, self.labels, positions, 0, self.augmentation,
                                 self.device, _Clock(self.device))
        for name, a, b in zip(("images", "labels", "partner labels", "lam"), real, mirrored):
            if not torch.equal(a, b):
                raise SystemExit(f"{self.spec.augmentation}: the lapped batch's {name} differ from _batch's; "
                                 "update _lapped_batch to follow auglens.train.epochs._batch")
        other = _OneModel(self.spec, self.data, self.device)
        self.trainee.step([real])
        _lapped_step(other, mirrored, _Clock(self.device))
        for (name, a), b in zip(self.trainee.model.state_dict().items(), other.model.state_dict().values()):
            if not torch.equal(a, b):
                raise SystemExit(f"{self.spec.augmentation}: after one step, {name} differs between the real and "
                                 "the lapped step; update _lapped_step to follow _OneModel.step")


class _Plain:
    """The reference: a plain loop of a fresh copy of the model over float images already in memory."""

    def __init__(self, spec, data, device, steps: int):
        model = initial_model(spec, data.num_classes, data.in_channels).to(device)
        images = model_input(data.train.images, data.mean, data.std, spec.input_size).to(device)
        if spec.channels_last:
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        self.model, self.images, self.labels, self.device = model, images, data.train.labels.to(device), device
        self.forward = torch.compile(model) if spec.compile else model
        self.optimizer = _optimizer(spec, model.parameters())
        bf16 = spec.precision == "bf16" or (spec.precision == "auto" and device.type == "cuda")
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        starts = list(range(0, len(images) - spec.batch_size + 1, spec.batch_size)) or [0]
        self.starts = [starts[i % len(starts)] for i in range(steps)]
        self.batch_size = spec.batch_size

    def steps(self, starts: list[int] | None = None) -> float:
        self.model.train()
        synchronize(self.device)
        started = time.perf_counter()
        for start in self.starts if starts is None else starts:
            x, y = self.images[start : start + self.batch_size], self.labels[start : start + self.batch_size]
            with self.autocast:
                logits = self.forward(x).float()
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        synchronize(self.device)
        return time.perf_counter() - started


def _profile(config, device, names: list[str], steps: int, repeats: int) -> tuple[list[dict], dict]:
    data = prepare_data(data_spec(config))
    seed = config.study.seeds[0]
    wanted = [(BASELINE, {})] + [(a.name, a.params) for a in config.augmentations if a.name in names]
    models = [_Model(train_spec(config, name, params, seed), data, device, steps) for name, params in wanted]
    plain = _Plain(models[0].spec, data, device, steps)
    for model in models:
        model.check_mirror()
    for model in models:  # warm-up, one step each: first calls allocate, load kernels and (with compile) compile
        model.steps(model.starts[:1])
        model.steps(model.starts[:1], _Clock(model.device))
    plain.steps(plain.starts[:1])

    best_plain = float("inf")
    best_real = {m.spec.augmentation: float("inf") for m in models}
    best_lapped = {m.spec.augmentation: (float("inf"), {}) for m in models}
    for _ in range(repeats):
        best_plain = min(best_plain, plain.steps())
        for model in models:
            name = model.spec.augmentation
            best_real[name] = min(best_real[name], model.steps())
            clock = _Clock(model.device)
            lapped = model.steps(clock=clock)
            if lapped < best_lapped[name][0]:
                best_lapped[name] = (lapped, clock.seconds)
        best_plain = min(best_plain, plain.steps())

    plain_ms = 1e3 * best_plain / steps
    rows = []
    for model in models:
        name = model.spec.augmentation
        lapped, parts = best_lapped[name]
        step_ms, lapped_ms = 1e3 * best_real[name] / steps, 1e3 * lapped / steps
        part_ms = {part: 1e3 * parts[part] / steps for part in PARTS}
        rows.append({"model": name, **{f"{p}_ms": v for p, v in part_ms.items()},
                     "rest_ms": lapped_ms - sum(part_ms.values()), "lapped_ms": lapped_ms, "step_ms": step_ms,
                     "plain_ms": plain_ms, "step/plain": step_ms / plain_ms, "lapped/step": lapped_ms / step_ms})
    setup = {"train_images": len(data.train), "batch_size": models[0].spec.batch_size,
             "image_shape": list(data.train.images.shape[1:]), "input_size": models[0].spec.input_size,
             "architecture": models[0].spec.architecture, "channels_last": models[0].spec.channels_last,
             "precision": models[0].spec.precision, "compile": models[0].spec.compile}
    return rows, setup


def _command(arguments: list[str], env: dict[str, str]) -> None:
    """``auglens ARGUMENTS`` in a fresh interpreter; its log is shown only if it fails."""
    done = subprocess.run([sys.executable, "-m", "auglens.cli", *arguments], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"auglens {arguments[0]} failed (exit status {done.returncode})")


def _study(config_path: str, overrides: list[str]) -> dict:
    """``auglens run`` (without the report) into a temporary folder, then ``auglens report`` on it: the stage
    timings the run recorded in its manifest, the report's wall time and each command's wall time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        _command(["run", config_path, "--out", out, "--no-report", "--no-progress", *overrides], env)
        run_wall = time.perf_counter() - started
        manifest = json.loads((Path(out) / "manifest.json").read_text())
        started = time.perf_counter()
        _command(["report", out], env)
        report_wall = time.perf_counter() - started
        import pandas as pd

        performance = pd.read_csv(Path(out) / "performance.csv")
    stages = {k.removesuffix("_seconds"): float(v) for k, v in manifest["timings_seconds"].items()
              if k != "total_seconds"}
    total = float(manifest["timings_seconds"]["total_seconds"])
    return {"stages_s": stages, "report_s": report_wall, "run_command_s": run_wall,
            # The run command's wall time outside its stages: before the run opens (interpreter start, imports,
            # reading the config) and inside it (data preparation, planning, tables, manifest).
            "startup_s": run_wall - total, "run_other_s": total - sum(stages.values()),
            "models": int(len(performance)), "train_seconds_per_model_mean": float(performance["train_seconds"].mean()),
            "manifest_device": manifest.get("device")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="examples/fashion-mnist-quick.toml")
    parser.add_argument("--images", type=int, help="training subset size before the validation split "
                        "(data.train_subset; default: the config's)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--augmentation", action="append", help="profile only this augmentation (repeatable; "
                        "default: every augmentation of the config); the baseline always")
    parser.add_argument("--threads", type=int, help="torch CPU threads (runtime.num_threads; default: the config's)")
    parser.add_argument("--device", help="runtime.device (default: the config's)")
    parser.add_argument("--study", action="store_true", help="also run the whole study and report its stage times")
    parser.add_argument("--json", default="bench/results/train_profile.json")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, for the profile and the study")
    args = parser.parse_args()

    overrides = list(args.overrides)
    if args.images is not None:
        overrides.append(f"data.train_subset={args.images}")
    if args.threads is not None:
        overrides.append(f"runtime.num_threads={args.threads}")
    if args.device is not None:
        overrides.append(f"runtime.device={args.device}")
    config = cfg.load(args.config, overrides)
    known = [a.name for a in config.augmentations]
    names = args.augmentation or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"not in the config: {', '.join(unknown)}; the config has {', '.join(known)}")
    device = configure_runtime(config.runtime)

    rows, setup = _profile(config, device, names, args.steps, args.repeats)
    cpu = cpu_description()
    described = describe_device(device)
    print(f"device: {described}; CPU {cpu['model']} ({cpu['capability']}), {torch.get_num_threads()} threads; "
          f"config {args.config} {' '.join(overrides)}")
    print(f"{setup['architecture']}, {setup['train_images']} training images {setup['image_shape']}, batch "
          f"{setup['batch_size']}, {args.steps} steps, best of {args.repeats}; milliseconds per step")
    print_table([{k: (v if k == "model" else round(v, 3)) for k, v in row.items()} for row in rows])
    baseline = rows[0]
    print(f"baseline step / plain step: {baseline['step/plain']:.2f}x; augmented step / plain step: "
          + ", ".join(f"{r['model']} {r['step/plain']:.2f}x" for r in rows[1:]))

    study = None
    if args.study:
        study = _study(args.config, overrides)
        print(f"\nstudy ({study['models']} models), seconds: "
              + ", ".join(f"{k}={v:.1f}" for k, v in study["stages_s"].items())
              + f", report={study['report_s']:.1f}; the run command {study['run_command_s']:.1f} in all: "
              f"{study['startup_s']:.1f} before the run opened, {study['run_other_s']:.1f} in it outside the stages")

    write_json(args.json, {"device": described, "cpu": cpu, "threads": torch.get_num_threads(),
                           "torch": torch.__version__, "config": args.config, "overrides": overrides,
                           "args": vars(args), "setup": setup, "rows": rows, "study": study})


if __name__ == "__main__":
    main()

"""``auglens`` command line: a thin layer, each subcommand calls one library function.

    auglens run CONFIG --out DIR [key=value ...]     train, CAMs, metrics, tables, report
    auglens validate CONFIG [key=value ...]          check a study or distortion config without running anything
    auglens architectures CONFIG --out DIR [--candidates A,B,C] [--backend ray] [key=value ...]
                                                     thesis step 2: candidate architectures side by side
    auglens report DIR                               (re)build DIR/report from DIR's tables
    auglens verify DIR [--repair]                    check (and recompute) DIR's artifacts and tables
    auglens compare --arch A --baseline B.safetensors M1.safetensors ... --data CONFIG --out DIR
    auglens compare --study DIR [--models A,B] [--all-pairs] --out OUT    a study's models by name
    auglens distortion CONFIG --out DIR [--only NAME] [--backend ray] [key=value ...]
                                                     the distortion paper's analyses
    auglens ls [augmentations|models|cams|metrics|faithfulness|analyses|datasets]

Options before or after the subcommand: ``-v`` (more detail), ``-q`` (warnings and errors only),
``--version``. ``run``, ``architectures``, ``report``, ``compare``, ``distortion`` and ``verify --repair``
write a log to the folder's ``logs/`` (``<command>-<UTC time>.log``). Exit codes: 0 success, 1 a run-time problem
(a missing file, a checkpoint that does not fit, an unexpected error: its traceback is in the log),
2 an invalid config (or, for ``run``, a results folder holding a study of another config or of other
result-changing runtime settings, without ``--force``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from auglens import logs
from auglens.config import ConfigError
from auglens.store import ArtifactError, StoreWriteError
from auglens.errors import UserError

log = logging.getLogger("auglens.cli")


def _check(config, source: str):
    """The checks before any work (:mod:`auglens.preflight`); logs where the data come from."""
    from auglens.preflight import preflight

    # On a Ray cluster the workers, not this machine, need the device.
    checked = preflight(config, source, check_availability=config.runtime.backend != "ray")
    if checked.source is not None:
        log.info(f"data: {checked.source.name} from {checked.source.description}")
    if checked.target_layer is not None:
        shape = f", output {checked.feature_shape} per image" if checked.feature_shape else ""
        log.debug(f"model: CAM target layer {checked.target_layer!r}{shape}")
    return checked


def _results_folder(out: str) -> Path:
    """``--out``, created (with its parents) here, so that a path that cannot be a folder is named at once."""
    if "://" in out:
        return Path(out)
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the results folder {path}: {error.strerror.lower()}"
                        f"{f' ({error.filename})' if error.filename and str(error.filename) != str(path) else ''}; "
                        "choose an --out where you can write") from error
    return path


#: The command that runs each kind of config, for the message when a config is given to the other one.
_COMMAND_OF_KIND = {"study": "auglens run", "distortion": "auglens distortion"}


def _load(path: str, overrides: list[str], kind: str | None):
    """The ``kind`` ("study" or "distortion") config at ``path``; a config of the other kind is refused with
    the command that runs it (rather than as a list of unknown keys). ``kind`` None: the kind its top-level
    keys say (a study config when they say neither)."""
    import dataclasses

    from auglens import config as cfg

    data = cfg.read_toml(path, overrides)
    if kind != "distortion" and set(data) <= {f.name for f in dataclasses.fields(cfg.Config)}:
        # Only a study's keys: a study config. The distortion package (it imports the whole training
        # stack, seconds) is imported only for a config that may be a distortion one.
        return cfg.Config.from_dict(data, path)
    from auglens.distortion.config import DistortionConfig, config_kind

    found = config_kind(data)
    kind = kind or found or "study"
    if found is not None and found != kind:
        raise ConfigError([f"this is a {found} config (its top-level keys say so), not a {kind} config: run it "
                           f"with `{_COMMAND_OF_KIND[found]} {path} --out DIR`"], path)
    return (DistortionConfig if kind == "distortion" else cfg.Config).from_dict(data, path)


def _cmd_run(args) -> int:
    from auglens.provenance import run_provenance
    from auglens.study import SettingsMismatch, run_study, summary_table

    config = _load(args.config, args.overrides, "study")
    if args.backend:
        config.runtime.backend = args.backend
    checked = _check(config, args.config)
    out = _results_folder(args.out)
    log.info(f"study {config.name!r} -> {out}")
    try:
        result = run_study(config, out, progress=not args.no_progress and config.runtime.progress, force=args.force,
                           provenance=run_provenance(args.argv, args.overrides))
    except SettingsMismatch as error:
        log.error(str(error))
        return 2
    print(summary_table(result))
    _warn_insane(result.performance, checked.source, out)
    print("\ntimings (s): " + ", ".join(f"{k.removesuffix('_seconds')}={v:.1f}" for k, v in result.timings.items()))
    if config.runtime.report and not args.no_report:
        from auglens.report import build_report

        index = build_report(out)
        print(f"report: {index}")
    print(f"tables: {out / 'performance.csv'}, {out / 'cam_metrics.parquet'}, {out / 'aug_metrics.parquet'}")
    return 0


def _warn_insane(performance, source, out: Path) -> None:
    """Warn about models near chance level or far below the baseline (the report shows a banner too)."""
    from auglens.analysis import sanity_problems

    num_classes = source.num_classes if source is not None else None
    if not num_classes:
        from safetensors import safe_open

        with safe_open(str(out / "test_set.safetensors"), framework="numpy") as f:
            num_classes = len(json.loads((f.metadata() or {}).get("classes", "[]")))
    for problem in sanity_problems(performance, num_classes):
        log.warning(problem)


def _cmd_validate(args) -> int:
    from auglens import config as cfg

    config = _load(args.config, args.overrides, None)
    checked = _check(config, args.config)
    if not isinstance(config, cfg.Config):  # a distortion config: its own sections and checks
        print(f"{args.config}: valid distortion config — analyses {', '.join(config.analyses)}; the basic model and "
              f"{len(config.augmentations)} augmentation(s) x {len(config.runs.seeds)} run(s); "
              f"device {config.runtime.device!r}; {checked.describe()}")
    else:
        n_controls = sum(len(control.values) for control in config.controls) * len(config.study.seeds)
        n_models = len(config.augmentations) * len(config.study.seeds) + n_controls + (
            len(config.study.seeds) if config.study.baseline == "per_seed" else 1)
        controls = f" + {n_controls} retraining control(s)" if n_controls else ""
        print(f"{args.config}: valid — {len(config.augmentations)} augmentation(s) x {len(config.study.seeds)} "
              f"seed(s){controls}, {n_models} models to train; device {config.runtime.device!r}; {checked.describe()}")
    if args.show:
        print(cfg.dump_toml(config))
    return 0


def _cmd_architectures(args) -> int:
    from auglens.provenance import run_provenance
    from auglens.study.architectures import check_candidates, select_architectures

    config = _load(args.config, args.overrides, "study")
    if args.backend:
        config.runtime.backend = args.backend
    _check(config, args.config)
    candidates = [name.strip() for name in args.candidates.split(",")] if args.candidates.strip() else []
    check_candidates(candidates, config)
    out = Path(args.out)
    result = select_architectures(config, candidates, out, progress=not args.no_progress and config.runtime.progress,
                                  provenance=run_provenance(args.argv, args.overrides), checked=True)
    print(result)
    print(f"table: {out / 'architectures.csv'}\nfigures: " + ", ".join(str(path) for path in result.figures))
    return 0


def _cmd_report(args) -> int:
    from auglens.report import build_report

    if Path(args.dir).is_dir():
        logs.log_to_folder(args.dir)
    print(build_report(Path(args.dir), pair_rank=args.pair_rank))
    return 0


def _cmd_verify(args) -> int:
    from auglens.study.verify import repair_results, verify_results

    report = verify_results(args.dir)
    print(report)
    if report.ok or not args.repair:
        return 0 if report.ok else 1
    logs.log_to_folder(args.dir)  # a repair reruns stages: its log goes beside the run's (a URL: console only)
    report = repair_results(args.dir, args.overrides, progress=not args.no_progress)
    print(f"after repair: {report}")
    return 0 if report.ok else 1


def _cmd_compare(args) -> int:
    from auglens.compare import compare_checkpoints, compare_study
    from auglens.provenance import run_provenance

    provenance = run_provenance(args.argv, args.overrides)
    _results_folder(args.out)
    if args.study:
        extra = [option for option, given in (("--arch", args.arch), ("--baseline", args.baseline),
                                              ("--data", args.data), ("weights files", args.models),
                                              ("--set", args.overrides)) if given]
        if extra:
            log.error(f"compare --study takes the architecture, data and settings from the study; drop {', '.join(extra)}")
            return 2
        models = [name.strip() for name in args.models_of_study.split(",") if name.strip()] if args.models_of_study else None
        print(compare_study(args.study, args.out, models, all_pairs=args.all_pairs, progress=not args.no_progress,
                            provenance=provenance, backend=args.backend))
        return 0
    missing = [option for option, given in (("--arch", args.arch), ("--baseline", args.baseline),
                                            ("--data", args.data), ("weights files", args.models)) if not given]
    if missing or args.models_of_study:
        log.error("compare needs --study DIR [--models A,B], or --arch, --baseline, --data and the weights files"
                  + (f"; missing {', '.join(missing)}" if missing else "; --models goes with --study"))
        return 2
    print(compare_checkpoints(args.arch, args.baseline, args.models, args.data, args.out,
                              all_pairs=args.all_pairs, overrides=args.overrides, progress=not args.no_progress,
                              provenance=provenance, backend=args.backend))
    return 0


def _cmd_distortion(args) -> int:
    from auglens.distortion import run_distortion
    from auglens.provenance import run_provenance

    overrides = list(args.overrides) + (["runtime.progress=false"] if args.no_progress else [])
    config = _load(args.config, overrides, "distortion")
    if args.backend:
        config.runtime.backend = args.backend
    _check(config, args.config)
    _results_folder(args.out)
    tables = run_distortion(config, args.out, args.only, provenance=run_provenance(args.argv, overrides))
    for name in tables:
        print(f"{name}: {Path(args.out) / 'distortion' / name}")
    return 0


def _cmd_ls(args) -> int:
    from auglens.augment import AUGMENTATIONS
    from auglens.cam import CAM_METHODS
    from auglens.data import DATASETS
    from auglens.metrics import CAM_METRICS
    from auglens.metrics.faithfulness import FAITHFULNESS_MEASURES
    from auglens.models import MODELS
    from auglens.study.model_jobs import MODEL_ANALYSES

    registries = {"augmentations": AUGMENTATIONS, "models": MODELS, "cams": CAM_METHODS,
                  "metrics": CAM_METRICS, "faithfulness": FAITHFULNESS_MEASURES, "analyses": MODEL_ANALYSES,
                  "datasets": DATASETS}
    wanted = [args.what] if args.what else list(registries)
    for what in wanted:
        registry = registries[what]
        print(f"{what}:")
        for name in registry.names():
            if what == "metrics":  # the parameters a [[metrics]] table takes, declared in the metric's entry
                params = ", ".join(f"{k}={v!r}" for k, v in registry.get(name).defaults().items())
            else:
                params = ", ".join(f"{k}={p.default!r}" for k, p in registry.parameters(name).items()
                                   if p.default is not p.empty and k not in ("num_classes", "in_channels"))
            line = f"  {name:<16} {registry.describe(name)}"
            if what == "models":  # its model.params, default CAM layer and size, on a line of their own
                line += f"\n  {'':<16} {_model_facts(name, params)}"
            elif params and what in ("augmentations", "metrics"):
                line += f"  [{params}]"
            print(line)
    return 0


def _model_facts(architecture: str, params: str) -> str:
    """``model.params`` with their defaults, the CAM layer ``cam.target_layer`` defaults to, and the number of
    weights (for 10 classes of 3-channel images), from the model built on the meta device (no memory)."""
    from auglens.preflight import check_model

    found: dict = {}
    errors = check_model(architecture, {}, None, num_classes=10, in_channels=3, side=None, found=found)
    layer = found.get("target_layer") or f"unknown ({'; '.join(errors) or 'not a named module'})"
    size = f"; {found['parameters'] / 1e6:.2f}M weights (10 classes, 3 channels)" if "parameters" in found else ""
    return f"params: {params or 'none'}; CAM layer: {layer}{size}"


def _verbosity(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=default, help="more detail (debug messages)")
    parser.add_argument("-q", "--quiet", action="count", default=default, help="warnings and errors only")


class _Version(argparse.Action):
    """``--version``: the version string is made only when asked for (it runs git, which every other command
    would pay for at start-up)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help="show the version"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from auglens.provenance import version_string

        print(version_string())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auglens", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_Version)
    _verbosity(parser, 0)
    common = argparse.ArgumentParser(add_help=False)
    _verbosity(common, argparse.SUPPRESS)  # -v/-q after the subcommand too, without resetting the ones before
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run a study from a TOML config")
    run.add_argument("config")
    run.add_argument("--out", required=True, help="results folder (rerun the same command to resume)")
    run.add_argument("--backend", choices=["local", "ray"], help="override runtime.backend")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--no-report", action="store_true")
    run.add_argument("--force", action="store_true",
                     help="replace a study of another config (or of other result-changing runtime settings) in the "
                          "--out folder: its config, manifest and tables move to replaced-<UTC time>/")
    run.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. training.epochs=2")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", parents=[common], help="check a config and print what it would run")
    validate.add_argument("config")
    validate.add_argument("--show", action="store_true", help="print the resolved config")
    validate.add_argument("overrides", nargs="*")
    validate.set_defaults(func=_cmd_validate)

    architectures = sub.add_parser("architectures", parents=[common], help="thesis step 2: train candidate "
                                   "architectures as baselines, test metrics after every epoch")
    architectures.add_argument("config")
    architectures.add_argument("--out", required=True, help="results folder (rerun the same command to resume)")
    architectures.add_argument("--candidates", default="efficientnet_b0,resnet18,densenet121",
                               help="comma-separated model names (auglens ls models); default: the thesis's three")
    architectures.add_argument("--backend", choices=["local", "ray"], help="where candidates train (default: runtime.backend)")
    architectures.add_argument("--no-progress", action="store_true")
    architectures.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. training.epochs=2")
    architectures.set_defaults(func=_cmd_architectures)

    report = sub.add_parser("report", parents=[common], help="build DIR/report/index.html from a finished study")
    report.add_argument("dir")
    report.add_argument("--pair-rank", choices=["signed", "absolute"], default="signed",
                        help="rank the most/least correlated pairs by signed r (the thesis) or by |r|")
    report.set_defaults(func=_cmd_report)

    verify = sub.add_parser("verify", parents=[common], help="check every artifact and table of a results folder (path or URL)")
    verify.add_argument("dir", help="results folder of `auglens run`: a path or an fsspec URL")
    verify.add_argument("--repair", action="store_true",
                        help="recompute what is damaged or missing (with what depends on it), rewrite the tables")
    verify.add_argument("--no-progress", action="store_true")
    verify.add_argument("overrides", nargs="*", help="key=value overrides for --repair, e.g. runtime.num_threads=1")
    verify.set_defaults(func=_cmd_verify)

    compare = sub.add_parser("compare", parents=[common], help="CAM metrics between a study's models, or checkpoints "
                             "you bring (no training)")
    compare.add_argument("--study", help="a finished study folder: compare its models by name, reusing its CAM sets")
    compare.add_argument("--models", dest="models_of_study",
                         help="with --study: comma-separated augmentations or model ids (default: every model)")
    compare.add_argument("--arch", help="model registry name or package.module:factory")
    compare.add_argument("--baseline", help="baseline weights (.safetensors or .pt)")
    compare.add_argument("models", nargs="*", help="other models' weights")
    compare.add_argument("--data", help="a study config (TOML) or a data set name")
    compare.add_argument("--out", required=True)
    compare.add_argument("--all-pairs", action="store_true", help="also compare every pair of models")
    compare.add_argument("--backend", choices=["local", "ray"], help="where CAMs and metrics compute (default: runtime.backend)")
    compare.add_argument("--set", dest="overrides", action="append", default=[], help="key=value override")
    compare.add_argument("--no-progress", action="store_true")
    compare.set_defaults(func=_cmd_compare)

    distortion = sub.add_parser("distortion", parents=[common], help="the distortion paper's analyses (DI, iOcclusion, affinity, ...)")
    distortion.add_argument("config")
    distortion.add_argument("--out", required=True)
    distortion.add_argument("--only", action="append", help="run only this analysis (repeatable)")
    distortion.add_argument("--backend", choices=["local", "ray"], help="where models train (default: runtime.backend)")
    distortion.add_argument("--no-progress", action="store_true", help="no progress bars (runtime.progress = false)")
    distortion.add_argument("overrides", nargs="*", help="key=value config overrides")
    distortion.set_defaults(func=_cmd_distortion)

    ls = sub.add_parser("ls", parents=[common], help="list registered names")
    ls.add_argument("what", nargs="?", choices=["augmentations", "models", "cams", "metrics", "faithfulness", "analyses",
                                                "datasets"])
    ls.set_defaults(func=_cmd_ls)
    return parser


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line as ``main`` does; argparse exits (status 2) on a bad one."""
    parser = build_parser()
    # key=value overrides may come before or after options (argparse stops collecting positionals at --out).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any("=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    args.argv = ["auglens", *(sys.argv[1:] if argv is None else argv)]  # the command as typed, for logs and manifests
    logs.setup(args.verbose - args.quiet, args.command)
    log.debug("command line: %s", " ".join(args.argv))
    try:
        return args.func(args)
    except ConfigError as error:
        log.error(f"invalid config: {error}")
        return 2
    except StoreWriteError as error:
        log.error(str(error))
        return 1
    except ArtifactError as error:
        # Damaged after this run's check (another process, a failing disk): the next run recomputes it.
        log.error(f"{error}; rerun the same command to recompute it")
        return 1
    except (UserError, FileNotFoundError, NotADirectoryError, PermissionError) as error:
        log.debug("".join(traceback.format_exception(error)))
        log.error(str(error))
        return 1
    except KeyboardInterrupt:
        log.warning("interrupted — rerun the same command to resume from the stored artifacts")
        return 130
    except Exception as error:
        path = logs.crash_log()
        log.debug("".join(traceback.format_exception(error)))
        log.error(f"unexpected error: {type(error).__name__}: {error}\n  the full traceback is in {path}; "
                  "please include that file when reporting the problem")
        return 1
    finally:
        logs.reset()  # in-process callers get logging as it was


if __name__ == "__main__":
    sys.exit(main())

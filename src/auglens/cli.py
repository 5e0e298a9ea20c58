"""``auglens`` command line: a thin layer, each subcommand calls one library function.

    auglens run CONFIG --out DIR [key=value ...]     train, CAMs, metrics, tables, report
    auglens validate CONFIG [key=value ...]          check a config without running anything
    auglens report DIR                               (re)build DIR/report from DIR's tables
    auglens compare --arch A --baseline B.safetensors M1.safetensors ... --data CONFIG --out DIR
    auglens distortion CONFIG --out DIR [--only NAME] [--backend ray]  the distortion paper's analyses
    auglens ls [augmentations|models|cams|metrics|datasets]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auglens.config import ConfigError


def _cmd_run(args) -> int:
    from auglens import config as cfg
    from auglens.study import run_study, summary_table

    config = cfg.load(args.config, args.overrides)
    if args.backend:
        config.runtime.backend = args.backend
    out = Path(args.out)
    print(f"auglens: study {config.name!r} -> {out}", file=sys.stderr)
    result = run_study(config, out, progress=not args.no_progress and config.runtime.progress)
    print(summary_table(result))
    print("\ntimings (s): " + ", ".join(f"{k.removesuffix('_seconds')}={v:.1f}" for k, v in result.timings.items()))
    if config.runtime.report and not args.no_report:
        from auglens.report import build_report

        index = build_report(out)
        print(f"report: {index}")
    print(f"tables: {out / 'performance.csv'}, {out / 'cam_metrics.parquet'}, {out / 'aug_metrics.parquet'}")
    return 0


def _cmd_validate(args) -> int:
    from auglens import config as cfg

    config = cfg.load(args.config, args.overrides)
    n_models = len(config.augmentations) * len(config.study.seeds) + (
        len(config.study.seeds) if config.study.baseline == "per_seed" else 1)
    print(f"{args.config}: valid — {len(config.augmentations)} augmentation(s) x {len(config.study.seeds)} seed(s), "
          f"{n_models} models to train")
    if args.show:
        print(cfg.dump_toml(config))
    return 0


def _cmd_report(args) -> int:
    from auglens.report import build_report

    print(build_report(Path(args.dir)))
    return 0


def _cmd_compare(args) -> int:
    from auglens.compare import compare_checkpoints

    result = compare_checkpoints(args.arch, args.baseline, args.models, args.data, args.out,
                                 all_pairs=args.all_pairs, overrides=args.overrides, progress=not args.no_progress)
    print(result)
    return 0


def _cmd_distortion(args) -> int:
    from auglens.distortion import run_from_toml

    tables = run_from_toml(args.config, args.out, args.overrides, args.only, args.backend)
    for name in tables:
        print(f"{name}: {Path(args.out) / 'distortion' / name}")
    return 0


def _cmd_ls(args) -> int:
    from auglens.augment import AUGMENTATIONS
    from auglens.cam import CAM_METHODS
    from auglens.data import DATASETS
    from auglens.metrics import CAM_METRICS
    from auglens.models import MODELS

    registries = {"augmentations": AUGMENTATIONS, "models": MODELS, "cams": CAM_METHODS,
                  "metrics": CAM_METRICS, "datasets": DATASETS}
    wanted = [args.what] if args.what else list(registries)
    for what in wanted:
        registry = registries[what]
        print(f"{what}:")
        for name in registry.names():
            params = ", ".join(f"{k}={p.default!r}" for k, p in registry.parameters(name).items()
                               if p.default is not p.empty and k not in ("num_classes", "in_channels"))
            line = f"  {name:<16} {registry.describe(name)}"
            print(line + (f"  [{params}]" if params and what == "augmentations" else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auglens", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a study from a TOML config")
    run.add_argument("config")
    run.add_argument("--out", required=True, help="results folder (rerun the same command to resume)")
    run.add_argument("--backend", choices=["local", "ray"], help="override runtime.backend")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--no-report", action="store_true")
    run.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. training.epochs=2")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a config and print what it would run")
    validate.add_argument("config")
    validate.add_argument("--show", action="store_true", help="print the resolved config")
    validate.add_argument("overrides", nargs="*")
    validate.set_defaults(func=_cmd_validate)

    report = sub.add_parser("report", help="build DIR/report/index.html from a finished study")
    report.add_argument("dir")
    report.set_defaults(func=_cmd_report)

    compare = sub.add_parser("compare", help="CAM metrics between checkpoints you bring (no training)")
    compare.add_argument("--arch", required=True, help="model registry name or package.module:factory")
    compare.add_argument("--baseline", required=True, help="baseline weights (.safetensors or .pt)")
    compare.add_argument("models", nargs="+", help="other models' weights")
    compare.add_argument("--data", required=True, help="a study config (TOML) or a data set name")
    compare.add_argument("--out", required=True)
    compare.add_argument("--all-pairs", action="store_true", help="also compare every pair of models")
    compare.add_argument("--set", dest="overrides", action="append", default=[], help="key=value override")
    compare.add_argument("--no-progress", action="store_true")
    compare.set_defaults(func=_cmd_compare)

    distortion = sub.add_parser("distortion", help="the distortion paper's analyses (DI, iOcclusion, affinity, ...)")
    distortion.add_argument("config")
    distortion.add_argument("--out", required=True)
    distortion.add_argument("--only", action="append", help="run only this analysis (repeatable)")
    distortion.add_argument("--backend", choices=["local", "ray"], help="where models train (default: runtime.backend)")
    distortion.add_argument("overrides", nargs="*", help="key=value config overrides")
    distortion.set_defaults(func=_cmd_distortion)

    ls = sub.add_parser("ls", help="list registered names")
    ls.add_argument("what", nargs="?", choices=["augmentations", "models", "cams", "metrics", "datasets"])
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
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"auglens: invalid config: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nauglens: interrupted — rerun the same command to resume from the stored artifacts",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""How well a study's baseline learns, over several initial weights: the recipe check behind a default study.

Trains the baseline of a study config (with ``key=value`` overrides) once per ``model.init_seed`` in
``--init-seeds``, each exactly as the study would (its data spec, training spec and runtime settings, one
thread per training, ``--workers`` trainings at once), and reports each one's test accuracy on the study's test
subset and on the whole test set, their means, the best epoch and the training seconds (steps only). One
draw of the initial weights can sit 0.01 above or below the mean, about the standard error of a
1,000-image test accuracy, so a recipe is judged by the mean, not by the study's own draw.

    python bench/baseline_accuracy.py [--config examples/fashion-mnist-quick.toml] [--init-seeds 0 1 2 3]
        [--workers 2] [key=value ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_json  # noqa: E402


def _train_one(task: tuple[str, list[str], int]) -> dict:
    config_path, overrides, init_seed = task
    import time

    from auglens import config as cfg
    from auglens.data.prepared import normalised_with, prepare_data
    from auglens.study.plan import BASELINE, data_spec, train_spec
    from auglens.study.runtime import configure_runtime
    from auglens.train.loop import evaluate, initial_model, train_model

    config = cfg.load(config_path, overrides=[*overrides, "runtime.workers=1", "runtime.num_threads=1"])
    device = configure_runtime(config.runtime)
    spec = dataclasses.replace(train_spec(config, BASELINE, {}, config.study.seeds[0]), init_seed=init_seed)
    data_of = data_spec(config)
    data = prepare_data(data_of)
    whole = prepare_data(dataclasses.replace(data_of, test_subset=None))
    started = time.perf_counter()
    result = train_model(spec, data, device)
    seconds = time.perf_counter() - started
    classes = int(data.train.labels.max()) + 1
    model = initial_model(spec, classes, data.train.images.shape[1], pretrained=False)
    model.load_state_dict(result.state_dict)
    model.eval()
    accuracies = []
    for prepared in (data, whole):
        prepared = normalised_with(prepared, spec.normalisation)
        accuracies.append(evaluate(model, prepared.test.images, prepared.test.labels, prepared.mean, prepared.std,
                                   spec.input_size, spec.eval_batch_size, device, classes)["accuracy"])
    return {"init_seed": init_seed, "accuracy_test_subset": accuracies[0], "accuracy_whole_test_set": accuracies[1],
            "best_epoch": result.best_epoch, "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="examples/fashion-mnist-quick.toml")
    parser.add_argument("--init-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="bench/results/baseline_accuracy.json")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args()
    tasks = [(args.config, args.overrides, seed) for seed in args.init_seeds]
    with get_context("spawn").Pool(min(args.workers, len(tasks))) as pool:
        rows = pool.map(_train_one, tasks)
    print(f"{args.config} {' '.join(args.overrides)}: baseline over init seeds {args.init_seeds}")
    print_table(rows)
    means = {key: round(statistics.mean(row[key] for row in rows), 4)
             for key in ("accuracy_test_subset", "accuracy_whole_test_set")}
    print(f"mean: test subset {means['accuracy_test_subset']}, whole test set {means['accuracy_whole_test_set']}")
    write_json(args.out, {"config": args.config, "overrides": args.overrides, "rows": rows, "means": means})


if __name__ == "__main__":
    main()

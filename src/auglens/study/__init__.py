"""Run a study: the thesis's steps 6–12 as independent, resumable jobs, then the result tables.

The package follows the pipeline, each module importing only those before it:

- :mod:`~auglens.study.runtime` — device, torch's thread count and the determinism switches,
- :mod:`~auglens.study.jobs` — the job specs (train, CAM, metric), their content keys and functions,
- :mod:`~auglens.study.plan` — a config unpacked into its jobs,
- :mod:`~auglens.study.backends` — ``local`` (this process) and ``ray`` (a cluster) run any list of jobs,
- :mod:`~auglens.study.tables` — the result tables, assembled from the artifacts alone,
- :mod:`~auglens.study.manifest` — ``manifest.json`` and the CLI's summary,
- :mod:`~auglens.study.integrity` — damaged or missing artifacts found, and recomputed with their dependants,
- :mod:`~auglens.study.run` — :func:`run_study`, which ties them together,
- :mod:`~auglens.study.verify` — ``auglens verify``: a results folder's artifacts and tables checked, repaired.

Jobs whose artifact exists are skipped, so rerunning after a crash resumes, and rerunning a finished
study trains nothing. Training also snapshots every epoch, so an interrupted training resumes mid-way
and ends with the same weights. Tables are assembled from the artifacts alone — which is why both
backends give identical tables.
"""

from auglens.study.jobs import (
    CamJob,
    Job,
    MetricGroupJob,
    MetricJob,
    TrainJob,
    compute_cam_set,
    load_trained_model,
    map_side,
    pair_metric_frame,
    run_cam_job,
    run_metric_job,
    run_train_job,
)
from auglens.study.manifest import summary_table, write_manifest
from auglens.study.plan import StudyPlan, data_spec, plan_study, train_spec
from auglens.study.run import SettingsMismatch, run_study
from auglens.study.runtime import DEFAULT_NUM_THREADS, ComputeSpec, compute_spec, configure_runtime, resolve_device
from auglens.study.tables import (
    PER_IMAGE_KEYS,
    StudyResult,
    assemble_tables,
    metric_value_columns,
    seed_average,
    write_csv,
    write_parquet,
    write_test_set,
)

__all__ = [
    "DEFAULT_NUM_THREADS", "PER_IMAGE_KEYS", "CamJob", "ComputeSpec", "Job", "MetricGroupJob", "MetricJob",
    "SettingsMismatch", "StudyPlan", "StudyResult", "TrainJob", "compute_spec",
    "assemble_tables", "compute_cam_set", "configure_runtime", "data_spec", "load_trained_model", "map_side",
    "metric_value_columns", "pair_metric_frame", "plan_study", "resolve_device", "run_cam_job", "run_metric_job",
    "run_study", "run_train_job", "seed_average", "summary_table", "train_spec", "write_csv", "write_manifest",
    "write_parquet", "write_test_set",
]

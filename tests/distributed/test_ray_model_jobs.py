"""Retraining controls, faithfulness and CKA jobs on a local 2-CPU Ray: the same tables as the local backend, and a
rerun submits nothing."""

from __future__ import annotations

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from auglens import study  # noqa: E402
from tests.study.test_model_jobs import _config  # noqa: E402

pytestmark = pytest.mark.slow  # whole studies on a local Ray


def test_ray_model_job_tables_equal_local(tmp_path):
    config = _config(controls=[{"name": "init_seed", "values": [3]}])
    local = tmp_path / "local"
    study.run_study(config, local, backend="local")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        result = study.run_study(config, out, backend="ray")
        assert result.timings["faithfulness_seconds"] > 0 and result.timings["cka_seconds"] > 0
        again = study.run_study(config, out, backend="ray")
        assert again.timings["train_seconds"] == again.timings["faithfulness_seconds"] == again.timings["cka_seconds"] == 0
    finally:
        ray.shutdown()
    performance = pd.read_csv(out / "performance.csv")
    assert "control:init_seed=3" in set(performance["augmentation"])  # the control ran as a Ray task too
    pd.testing.assert_frame_equal(pd.read_parquet(local / "aug_metrics.parquet"),
                                  pd.read_parquet(out / "aug_metrics.parquet"), check_exact=True)
    for name in ("model_faithfulness.parquet", "aug_faithfulness.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(local / name), pd.read_parquet(out / name), check_exact=True)
    for name in ("model_cka.csv", "aug_cka.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(local / name), pd.read_csv(out / name), check_exact=True)

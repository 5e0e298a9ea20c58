"""Statistics over a study's tables: pure functions of DataFrames, no plotting and no I/O.

Thesis (Dorneles 2024) analyses, Section 5.2 and Appendices A and C:

* :func:`performance_summary` — mean ± std over seeds of test accuracy / precision / recall / F1
  (Figures 5.6-5.9); :func:`training_time_summary` (Figure 5.5).
* :func:`architecture_summary` — per candidate architecture of step 2, the kept epoch and its test metrics.
* :func:`correlation_map` / :func:`correlation_maps` — Pearson correlation of a metric between every pair
  of augmentations over the test images (Figures 5.11-5.25).
* :func:`pair_frequencies` — how often a pair is among the k most / least correlated (Tables 5.1 / 5.2).
* :func:`extreme_images` — images with the highest mean / std of a metric across augmentations (Appendix A).
* :func:`correctness_segments` / :func:`segment_counts` — segmentation by which model is right (Appendix C).

Beyond the thesis:

* :func:`cluster_augmentations` — average-linkage clustering on ``1 - r``.
* :func:`bootstrap_median_ci` / :func:`median_ci_table` — percentile-bootstrap CI of each median.
* :func:`paired_permutation_test` / :func:`permutation_test_table` — do two augmentations differ?
* :func:`metric_summary` — the numbers behind the boxplots.
* :func:`control_floor` / :func:`floor_verdict` — the noise floor of retraining from the ``[[controls]]``
  models, and whether an augmentation's change is beyond it (:func:`change_ranking`'s ``floor`` column).

Inputs are the study tables (``performance.csv``, ``cam_metrics.parquet``, ``aug_metrics.parquet`` ...);
metric columns are whatever columns are not keys (:func:`metric_columns_of`).
"""

from auglens.analysis.columns import (
    AUG_KEYS,
    BASELINE,
    KINDS,
    PER_IMAGE_KEYS,
    control_name,
    higher_is_better,
    is_control,
    metric_columns_of,
)
from auglens.analysis.correlation import (
    ClusterResult,
    cluster_augmentations,
    correlation_map,
    correlation_maps,
    extreme_pairs,
    metric_matrix,
    pair_frequencies,
)
from auglens.analysis.extremes import extreme_images, image_statistics
from auglens.analysis.model_analyses import cka_seed_average, faithfulness_seed_average
from auglens.analysis.findings import (
    FLOOR_VERDICTS,
    change_ranking,
    control_floor,
    floor_verdict,
    overall_change_ranking,
)
from auglens.analysis.inference import (
    PermutationResult,
    bootstrap_median_ci,
    holm_adjust,
    median_ci_table,
    metric_summary,
    paired_permutation_test,
    permutation_test_table,
)
from auglens.analysis.performance import (
    ARCHITECTURE_COLUMNS,
    PERFORMANCE_METRICS,
    VALIDATION_METRICS,
    architecture_summary,
    augmentation_order,
    performance_summary,
    training_time_summary,
)
from auglens.analysis.sanity import sanity_problems
from auglens.analysis.segments import SEGMENTS, correctness_segments, segment_counts

__all__ = [
    "ARCHITECTURE_COLUMNS",
    "AUG_KEYS",
    "BASELINE",
    "FLOOR_VERDICTS",
    "KINDS",
    "PERFORMANCE_METRICS",
    "PER_IMAGE_KEYS",
    "SEGMENTS",
    "VALIDATION_METRICS",
    "ClusterResult",
    "PermutationResult",
    "architecture_summary",
    "cka_seed_average",
    "augmentation_order",
    "bootstrap_median_ci",
    "change_ranking",
    "cluster_augmentations",
    "control_floor",
    "control_name",
    "correctness_segments",
    "correlation_map",
    "correlation_maps",
    "extreme_images",
    "faithfulness_seed_average",
    "extreme_pairs",
    "floor_verdict",
    "higher_is_better",
    "holm_adjust",
    "image_statistics",
    "is_control",
    "median_ci_table",
    "metric_columns_of",
    "metric_matrix",
    "metric_summary",
    "overall_change_ranking",
    "pair_frequencies",
    "paired_permutation_test",
    "performance_summary",
    "permutation_test_table",
    "sanity_problems",
    "segment_counts",
    "training_time_summary",
]

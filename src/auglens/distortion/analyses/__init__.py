"""The distortion paper's analyses, one module each, registered with their config section and figure.

Each analysis is a function ``Runner -> {table name: DataFrame}`` over several runs (per-run results,
then mean ± std tables), registered in :data:`ANALYSES` by :func:`register_analysis` together with the
dataclass of its ``[<name>]`` config section, its figure and its cross-field checks;
:func:`auglens.distortion.run_analysis` runs one and writes its tables and figure. Per-run results are
cached in the artifact store (see :mod:`auglens.distortion.runner`), so reruns resume.

- :mod:`.interference`: DI index (Eq. 1) of each model type under grid shuffle and occlusion, the
  worst-case variant, and DI after retraining without c_max (Tables 1, 3, 4, 6).
- :mod:`.occlusion`: CutOcclusion and iOcclusion (Eq. 2) curves over occluded fractions, per masking,
  occluder and image subset (Table 4, Figures 3, 4).
- :mod:`.affinity`: affinity of each augmentation for the clean-trained reference model, Diversity and
  MixDiversity of the augmentation-trained model (Table 5).
- :mod:`.interdataset`: accuracy after mixed-sample training whose partners come from another data set (Table 7).
- :mod:`.simplicity`: stacked simple/complex images, accuracy against each half's label on recombined pairs,
  without and with mixing of one half (Section 4.1).
- :mod:`.cue_conflict`: shape accuracy, texture accuracy and shape bias on cue-conflict images (Table 2).
"""

from __future__ import annotations

# Imported for registration, in the paper's order (the order in which analyses run by default).
from auglens.distortion.analyses import (  # noqa: F401
    interference,
    occlusion,
    affinity,
    interdataset,
    simplicity,
    cue_conflict,
)
from auglens.distortion.analyses.common import summarise
from auglens.distortion.analyses.registry import ANALYSES, Analysis, analysis_names, register_analysis

__all__ = ["ANALYSES", "Analysis", "analysis_names", "register_analysis", "summarise"]

"""A training job that SIGKILLs its Ray worker once, mid-training: the fault the Ray backend must survive."""

from __future__ import annotations

import dataclasses
import os
import signal

from auglens.study.jobs import TrainJob


@dataclasses.dataclass(frozen=True)
class KillOnceTrainJob(TrainJob):
    """The same training (same key, same artifacts) whose worker dies once after an epoch snapshot was written.

    ``marker`` is a file path created exclusively by the dying task, so exactly one task of a run dies.
    """

    marker: str = ""

    def run(self, store, device, progress=None) -> str:
        def die_once(_images: int) -> None:
            if not store.exists("snapshots", self.key, "pt"):
                return
            try:
                with open(self.marker, "x"):
                    pass
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

        return super().run(store, device, die_once)


def kill_one_training(plan, marker: str):
    """``plan`` with every training wrapped in :class:`KillOnceTrainJob` (keys unchanged)."""
    plan.models = [dataclasses.replace(job, model=KillOnceTrainJob(**{f.name: getattr(job.model, f.name)
                                                                      for f in dataclasses.fields(job.model)},
                                                                   marker=marker))
                   for job in plan.models]
    plan.trainings = None  # one training job per model: the wrapped ones
    return plan

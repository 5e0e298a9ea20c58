"""Which artifacts a run recomputes: the damaged ones and everything downstream, on jobs that compute nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from auglens.store import ArtifactStore
from auglens.study.integrity import heal, inspect_jobs
from auglens.study.jobs import Job, run_claimed


@dataclass(frozen=True)
class Step(Job):
    """A job that writes ``results/<name>.json``; ``after`` are its dependencies."""

    name: str
    after: tuple[Job, ...] = ()

    stage: ClassVar[str] = "step"
    artifact: ClassVar[tuple[str, str]] = ("results", "json")

    @property
    def key(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.name

    @property
    def dependencies(self) -> tuple[Job, ...]:
        return self.after

    def run(self, store, device, progress=None) -> str:
        store.save_json("results", self.name, {"from": [d.name for d in self.after]})
        return self.key


@pytest.fixture
def chain(tmp_path):
    """a -> b -> c, and a -> d (b and d read a; c reads b), all computed."""
    a = Step("a")
    b = Step("b", (a,))
    c = Step("c", (b,))
    d = Step("d", (a,))
    jobs = [a, b, c, d]
    store = ArtifactStore(tmp_path)
    for job in jobs:
        run_claimed(job, store, None)
    return store, jobs


def _damage(store: ArtifactStore, name: str) -> None:
    Path(store.path("results", name, "json")).write_bytes(b"{broken")


def _redo(store, jobs):
    _, findings, redo = inspect_jobs(jobs, store)
    return [str(f) for f in findings], sorted(job.name for job in redo)


def test_a_sound_store_needs_nothing(chain):
    assert _redo(*chain) == ([], [])


def test_a_damaged_artifact_is_recomputed_with_everything_downstream(chain):
    store, jobs = chain
    _damage(store, "b")
    findings, redo = _redo(store, jobs)
    assert redo == ["b", "c"]
    size = len(json.dumps({"from": ["a"]}, indent=1))  # what b wrote
    assert findings == [f"results/b.json (step job b): truncated (7 of {size} bytes); 1 dependant job(s): step c"]
    _damage(store, "a")
    assert _redo(store, jobs)[1] == ["a", "b", "c", "d"]


def test_a_damaged_leaf_is_recomputed_alone(chain):
    store, jobs = chain
    _damage(store, "c")
    assert _redo(store, jobs)[1] == ["c"]


def test_missing_is_pending_work_unless_something_downstream_exists(chain):
    store, jobs = chain
    store.delete("results", "c", "json")
    assert _redo(store, jobs) == ([], [])  # nothing below c: just not computed yet
    store.delete("results", "a", "json")
    findings, redo = _redo(store, jobs)
    assert redo == ["a", "b", "d"]  # c is missing too: not listed, simply pending
    assert findings == ["results/a.json (step job a): missing; 2 dependant job(s): step b, step d"]


def test_heal_deletes_what_must_be_recomputed_and_a_rerun_restores_it(chain):
    store, jobs = chain
    _damage(store, "b")
    findings = heal(jobs, store)
    assert len(findings) == 1
    assert [store.exists("results", n, "json") for n in "abcd"] == [True, False, False, True]
    for job in jobs:
        run_claimed(job, store, None)
    assert _redo(store, jobs) == ([], [])


def test_a_job_claimed_elsewhere_is_not_run(chain):
    store, jobs = chain
    store.delete("results", "d", "json")
    holder = store.try_claim(jobs[3].claim)
    assert run_claimed(jobs[3], store, None, wait=False) is False
    assert not store.exists("results", "d", "json")
    holder.release()
    assert run_claimed(jobs[3], store, None, wait=False) is True
    assert store.exists("results", "d", "json")

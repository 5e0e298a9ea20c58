"""Provenance records: the git commit of a checkout, data file checksums, run history with summed timings."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from auglens import provenance
from auglens.data import datasets as ds


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_git_commit_of_a_checkout_and_none_elsewhere(tmp_path):
    assert provenance.git_commit(tmp_path) is None  # not a checkout
    repo = tmp_path / "repo"
    (repo / "src" / "auglens").mkdir(parents=True)
    (repo / "src" / "auglens" / "x.py").write_text("a = 1\n")
    _git("init", "-q", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    assert provenance.git_commit(repo / "src" / "auglens") == head
    (repo / "src" / "auglens" / "x.py").write_text("a = 2\n")
    assert provenance.git_commit(repo / "src" / "auglens") == head + "+dirty"


def test_data_provenance_checksums_the_files_read(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    for stem in ds._IDX_STEMS:
        (tmp_path / stem).write_bytes(stem.encode())
    record = provenance.data_provenance(ds.locate_dataset("fashion_mnist", tmp_path))
    assert record["path"] == str(tmp_path.resolve()) and record["n_files"] == 4
    assert record["files_sha256"] == {stem: hashlib.sha256(stem.encode()).hexdigest() for stem in ds._IDX_STEMS}
    assert provenance.data_provenance(ds.locate_dataset("synthetic"))["path"] is None
    assert provenance.data_provenance(None) is None


def test_many_files_are_summarised_by_one_digest(tmp_path):
    for split in ("train", "test"):
        for i in range(20):
            (tmp_path / split / "c").mkdir(parents=True, exist_ok=True)
            (tmp_path / split / "c" / f"{i}.png").write_bytes(bytes([i]))
    record = provenance.data_provenance(ds.locate_dataset("image_folder", tmp_path))
    assert record["n_files"] == 40 and "files_sha256" not in record and len(record["all_files_sha256"]) == 64
    (tmp_path / "test" / "c" / "3.png").write_bytes(b"changed")
    assert provenance.data_provenance(ds.locate_dataset("image_folder", tmp_path))["all_files_sha256"] != \
        record["all_files_sha256"]


def test_run_history_sums_timings_over_runs():
    first = provenance.record_run(None, {"started_at": "a"}, {"train_seconds": 60.0, "total_seconds": 70.0})
    second = provenance.record_run(first, {"started_at": "b"}, {"train_seconds": 0.5, "total_seconds": 2.0})
    assert [run["started_at"] for run in second["runs"]] == ["a", "b"]
    assert second["timings_seconds"] == pytest.approx({"train_seconds": 60.5, "total_seconds": 72.0})
    assert second["runs"][1]["timings_seconds"] == {"train_seconds": 0.5, "total_seconds": 2.0}


def test_run_provenance_and_version_string():
    import auglens

    record = provenance.run_provenance(["auglens", "run", "x.toml"], ["training.epochs=2"])
    assert record["command_line"] == ["auglens", "run", "x.toml"] and record["overrides"] == ["training.epochs=2"]
    assert record["auglens"] == auglens.__version__ and record["host"] and record["started_at"].endswith("Z")
    assert provenance.version_string().startswith(f"auglens {auglens.__version__}")

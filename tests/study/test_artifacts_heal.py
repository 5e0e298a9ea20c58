"""A study whose store goes wrong: a full disk mid-run, damaged artifacts, two runs on one folder."""

from __future__ import annotations

import errno
import os

import pytest

from auglens import config as cfg
from auglens import store as store_module
from auglens import study
from auglens.cli import main
from tests.tables import assert_same_tables


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One undamaged run of the tiny study: the tables every healed run must reproduce."""
    from tests.conftest import TINY_STUDY

    root = tmp_path_factory.mktemp("reference")
    (root / "tiny.toml").write_text(TINY_STUDY)
    study.run_study(cfg.load(root / "tiny.toml"), root / "out")
    return root


def _partial_files(folder):
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_study_is_a_clean_error_and_the_next_run_continues(reference, tmp_path,
                                                                                   monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["run", str(reference / "tiny.toml"), "--out", str(out), "--no-progress", "--no-report"]
    real_fsync, calls = os.fsync, []

    def fsync(descriptor):
        calls.append(descriptor)
        if len(calls) >= 12:  # the disk is full from the 12th write on: a few models in
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    assert main(args) == 1
    message = capsys.readouterr().err
    assert f"cannot write to {out}" in message and "ENOSPC" in message and "rerun the same command" in message
    assert _partial_files(out) == []
    store = store_module.ArtifactStore(out / "artifacts")
    written = list(store.artifacts())
    assert written and all(store.check(*artifact).ok for artifact in written)

    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert main(args) == 0
    assert_same_tables(reference / "out", out)
    assert _partial_files(out) == []

"""Messages of the smaller mistakes: a folder as the config, overrides in the wrong shape, an unwritable --out."""

from __future__ import annotations

import os

import pytest

from auglens import config as cfg
from auglens.cli import main
from auglens.config import ConfigError


def test_overrides_given_as_a_string_or_an_unbracketed_list_say_how_to_write_them(tiny_config_path):
    with pytest.raises(ConfigError, match=r"list of key=value strings, e\.g\. \['training\.epochs=1'\]"):
        cfg.load(tiny_config_path, "training.epochs=1")
    with pytest.raises(ConfigError, match=r"write a list as study\.seeds=\[1,2\]"):
        cfg.load(tiny_config_path, ["study.seeds=1,2"])


def test_a_folder_given_as_the_config_is_named_a_folder(tmp_path):
    (tmp_path / "config.toml").write_text("")
    with pytest.raises(ConfigError, match=r"is a folder; give a TOML file \(a results folder's config is .*config\.toml\)"):
        cfg.load(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_an_out_folder_that_cannot_be_created_is_named(tiny_config_path, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["run", str(tiny_config_path), "--out", str(locked / "study"), "--no-report"]) == 1
    error = capsys.readouterr().err
    assert f"cannot create the results folder {locked / 'study'}" in error


def test_an_out_folder_under_a_file_is_named(tiny_config_path, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["run", str(tiny_config_path), "--out", str(tmp_path / "file" / "study"), "--no-report"]) == 1
    error = capsys.readouterr().err
    assert f"cannot create the results folder {tmp_path / 'file' / 'study'}" in error and "Errno" not in error

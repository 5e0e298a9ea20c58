"""The command line: each subcommand reaches its library function; config errors exit 2 before any work."""

from __future__ import annotations

from auglens.cli import main


def test_ls_lists_every_registry(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("affine", "efficientnet_b0", "scorecam", "spearman", "fashion_mnist"):
        assert name in out


def test_validate_applies_overrides(tiny_config_path, capsys):
    assert main(["validate", str(tiny_config_path), "--show", "training.epochs=4"]) == 0
    assert "epochs = 4" in capsys.readouterr().out


def test_invalid_config_exits_2_listing_every_problem(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[training]\nepochs = 0\n[cam]\nmethod = "gradcan"\n')
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "training.epochs" in err and "cam.method" in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_override_after_out_is_applied(tiny_config_path, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(tiny_config_path.read_text())
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "training.epochs=0"])
    assert code == 2 and "training.epochs: must be >= 1" in capsys.readouterr().err

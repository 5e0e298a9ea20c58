"""The command line: each subcommand reaches its library function; config errors exit 2 before any work."""

from __future__ import annotations

import re

from auglens.cli import main


def test_ls_lists_every_registry(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("affine", "efficientnet_b0", "scorecam", "spearman", "fashion_mnist"):
        assert name in out


def test_ls_models_shows_each_models_params_cam_layer_and_size(capsys):
    from auglens.models import MODELS, build_model

    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    facts = dict(re.findall(r"^  (\S+) .*\n {19}(params: .*)$", out, re.M))
    assert set(facts) == set(MODELS.names())
    assert ("params: width=32, convs_per_block=(2, 2, 2), pool_before_norm=False; CAM layer: features.block3;"
            in facts["small_cnn"])
    assert facts["resnet18"].startswith("params: none; CAM layer: layer4.1;")
    weights = sum(p.numel() for p in build_model("tiny_cnn", 10, 3).parameters())
    assert f"{weights / 1e6:.2f}M weights (10 classes, 3 channels)" in facts["tiny_cnn"]


def test_validate_applies_overrides(tiny_config_path, capsys):
    assert main(["validate", str(tiny_config_path), "--show", "training.epochs=4"]) == 0
    assert "epochs = 4" in capsys.readouterr().out


def test_validate_counts_every_model_to_train_controls_included(tiny_config_path, capsys):
    # TINY_STUDY: 2 augmentations x 2 seeds and one shared baseline; a control with 2 values, per seed
    assert main(["validate", str(tiny_config_path)]) == 0
    assert "2 augmentation(s) x 2 seed(s), 5 models to train" in capsys.readouterr().out
    text = tiny_config_path.read_text() + '\n[[controls]]\nname = "init_seed"\nvalues = [5, 6]\n'
    tiny_config_path.write_text(text)
    assert main(["validate", str(tiny_config_path)]) == 0
    assert "2 seed(s) + 4 retraining control(s), 9 models to train" in capsys.readouterr().out


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


def test_version(capsys):
    import pytest

    import auglens

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"auglens {auglens.__version__}")


def test_validate_catches_what_only_the_world_can_say(tiny_config_path, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["validate", str(tiny_config_path), "runtime.device=cuda", "data.name=image_folder",
                 f"data.root={tmp_path / 'none'}", "model.architecture=small_cnn", 'model.params={width="wide"}',
                 "cam.target_layer=features.block9"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    for key in ("runtime.device", "data.root", "model.params.width"):
        assert f"  - {key}:" in err
    code = main(["run", str(tiny_config_path), "--out", str(tmp_path / "out"), "runtime.device=gpu",
                 "cam.target_layer=features.block9"])
    err = capsys.readouterr().err
    assert code == 2 and "  - runtime.device: 'gpu'" in err and "  - cam.target_layer:" in err
    assert not (tmp_path / "out").exists()  # found before any work


def test_distortion_runs_the_same_checks(tmp_path, capsys):
    path = tmp_path / "d.toml"
    path.write_text('analyses = ["affinity"]\n[data]\nname = "synthetic"\n[model]\narchitecture = "tiny_cnn"\n'
                    '[runtime]\ndevice = "gpu"\n')
    assert main(["distortion", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "runtime.device: 'gpu'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_compare_names_each_checkpoint_that_does_not_fit(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from auglens.models import build_model

    torch.manual_seed(0)
    save_file(build_model("tiny_cnn", 4, 1).state_dict(), tmp_path / "base.safetensors")
    torch.save(build_model("small_cnn", 4, 1).state_dict(), tmp_path / "wider.pt")
    torch.save({f"module.{k}": v for k, v in build_model("tiny_cnn", 4, 1).state_dict().items()}, tmp_path / "ddp.pt")
    code = main(["compare", "--arch", "tiny_cnn", "--baseline", str(tmp_path / "base.safetensors"),
                 str(tmp_path / "wider.pt"), str(tmp_path / "ddp.pt"), "--data", "synthetic",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "2 of 3 checkpoint(s)" in err
    assert f"{tmp_path / 'wider.pt'}: does not fit SmallCNN: " in err and "of another shape" in err
    assert f"{tmp_path / 'ddp.pt'}: " in err and "'module.'" in err
    assert str(tmp_path / "base.safetensors") + ":" not in err
    log = next((tmp_path / "out" / "logs").glob("compare-*.log")).read_text()
    assert "does not fit" in log and "Traceback" in log  # the log keeps the detail


def test_unexpected_error_short_message_and_log(tiny_config_path, tmp_path, capsys, monkeypatch):
    import auglens.study.run

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(auglens.study.run, "plan_study", broken)  # inside the run, once it is opened
    code = main(["run", str(tiny_config_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "unexpected error: ZeroDivisionError: a bug" in err
    (log,) = (tmp_path / "out" / "logs").glob("run-*.log")
    assert str(log) in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text


def test_quiet_and_verbose(tiny_config_path, capsys):
    assert main(["validate", str(tiny_config_path)]) == 0
    assert "data: synthetic from generated in memory" in capsys.readouterr().err
    assert main(["-q", "validate", str(tiny_config_path)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["validate", "-v", str(tiny_config_path)]) == 0
    assert "command line:" in capsys.readouterr().err


def test_compare_results_are_reportable(tmp_path, capsys):
    import pandas as pd
    import torch
    from safetensors.torch import save_file

    from auglens.models import build_model

    paths = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"model{seed}.safetensors")
        save_file(build_model("tiny_cnn", 4, 1).state_dict(), paths[-1])
    out = tmp_path / "out"
    assert main(["compare", "--arch", "tiny_cnn", "--baseline", str(paths[0]), str(paths[1]), str(paths[2]),
                 "--data", "synthetic", "--out", str(out), "--no-progress", "--set", "metrics.names=[\"mad\"]"]) == 0
    assert main(["report", str(out)]) == 0
    page = (out / "report" / "index.html").read_text()
    assert "No training record" in page and 'id="browser-data"' in page
    perf = pd.read_csv(out / "performance.csv")
    assert perf["model"].tolist() == ["model0", "model1", "model2"]
    assert (out / "logs").is_dir() and list((out / "logs").glob("compare-*.log"))
    import hashlib
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    (run,) = manifest["runs"]
    assert run["command_line"][:2] == ["auglens", "compare"] and run["overrides"] == ['metrics.names=["mad"]']
    assert run["started_at"] <= run["finished_at"] and run["host"]
    assert manifest["data_source"] == {"name": "synthetic", "path": None, "note": "generated in memory"}
    assert manifest["device"].startswith("cpu (")
    assert manifest["checkpoints_sha256"][str(paths[1])] == hashlib.sha256(paths[1].read_bytes()).hexdigest()
    capsys.readouterr()


DISTORTION_TOML = ('name = "d"\nanalyses = ["affinity"]\n[data]\nname = "synthetic"\ntrain_subset = 64\ntest_subset = 16\n'
                   '[model]\narchitecture = "tiny_cnn"\ninput_size = 16\n[training]\noptimizer = "adam"\nlr = 3e-3\n'
                   'epochs = 1\nbatch_size = 32\n[runs]\nseeds = [1]\n[[augmentations]]\nname = "fmix"\n'
                   '[affinity]\nmax_test_images = 16\n[runtime]\ndevice = "cpu"\nnum_threads = 1\nprogress = true\n')


def test_validate_reads_a_distortion_config_with_the_distortion_checks(tmp_path, capsys):
    path = tmp_path / "d.toml"
    path.write_text(DISTORTION_TOML)
    assert main(["validate", str(path), "--show", "runs.seeds=[1,2,3]"]) == 0
    out = capsys.readouterr().out
    assert "valid distortion config" in out and "analyses affinity" in out and "x 3 run(s)" in out
    assert "[runs]" in out and "[affinity]" in out  # the resolved distortion config, not a study's
    # its own keys are known, its own rules apply, and a misspelt one is named with the distortion sections' keys
    assert main(["validate", str(path), "runs.seedz=[1]", "training.models_at_once=2"]) == 2
    err = capsys.readouterr().err
    assert "runs.seedz: unknown key (did you mean 'seeds'?)" in err and "training.models_at_once:" in err
    assert "runs: unknown key" not in err and "affinity: unknown key" not in err


def test_distortion_no_progress_turns_the_bars_off(tmp_path, capsys):
    path = tmp_path / "d.toml"
    path.write_text(DISTORTION_TOML)
    out = tmp_path / "out"
    assert main(["distortion", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "progress = false" in (out / "distortion" / "config.toml").read_text()
    err = capsys.readouterr().err
    assert "%|" not in err and "img/s" not in err  # tqdm's bar and rate


def test_a_config_given_to_the_other_command_names_the_command_that_runs_it(tiny_config_path, tmp_path, capsys):
    distortion = tmp_path / "d.toml"
    distortion.write_text(DISTORTION_TOML)
    for command, path, expected in (("run", distortion, "auglens distortion"),
                                    ("architectures", distortion, "auglens distortion"),
                                    ("distortion", tiny_config_path, "auglens run")):
        out = tmp_path / f"out-{command}"
        assert main([command, str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"run it with `{expected} {path} --out DIR`" in err and "unknown key" not in err, err
        assert not out.exists()
    # a config of shared sections only is read by both
    shared = tmp_path / "shared.toml"
    shared.write_text('[data]\nname = "synthetic"\n[model]\narchitecture = "tiny_cnn"\n[runtime]\ndevice = "cpu"\n')
    assert main(["validate", str(shared)]) == 0
    assert "valid —" in capsys.readouterr().out

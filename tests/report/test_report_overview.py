"""The report's overview says only what the folder knows about how its models were trained."""

from __future__ import annotations

from auglens.report.build import _comparison_design

CONFIG = '[model]\ninit_seed = 7\n[study]\nbaseline = "shared"\n'


def test_a_study_states_its_shared_initial_weights():
    text = _comparison_design(CONFIG, {"compute": {}})
    assert "starts from the same initial weights (model.init_seed = 7)" in text


def test_a_study_started_from_pretrained_weights_says_so_and_names_the_heads_seed():
    text = _comparison_design('[model]\ninit_seed = 7\npretrained = "imagenet"\n[study]\nbaseline = "shared"\n',
                              {"compute": {}})
    assert 'starts from the same pretrained weights (model.pretrained = "imagenet")' in text
    assert "head drawn from model.init_seed = 7" in text and "same initial weights" not in text
    text = _comparison_design('[model]\ninit_seed = 7\npretrained = "none"\n[study]\nbaseline = "shared"\n',
                              {"compute": {}})
    assert "starts from the same initial weights (model.init_seed = 7)" in text


def test_a_comparison_of_weights_files_claims_nothing_about_their_training():
    # compare writes a config (its model.init_seed is the default) but trained none of the files.
    text = _comparison_design(CONFIG, {"command": "compare", "baseline": "base.safetensors"})
    assert "initial weights" in text and "same initial weights" not in text
    assert "not known here" in text


def test_a_comparison_of_a_studys_models_names_the_study():
    text = _comparison_design(CONFIG, {"command": "compare", "study": "/results/tiny"})
    assert text.startswith("The models are those of the study in /results/tiny")
    assert "same initial weights (model.init_seed = 7)" in text


def test_mean_std_cells_show_no_false_precision():
    from auglens.report.build import _mean_std

    assert _mean_std(2.0, 0.0, 1) == "2"  # every seed kept epoch 2
    assert _mean_std(2.0, float("nan"), 1) == "2"  # one seed
    assert _mean_std(1.5, 0.7071, 1) == "1.5 ± 0.7"
    assert _mean_std(12.3456, float("nan")) == "12.346 ± –"

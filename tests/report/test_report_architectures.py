"""The report's "Architecture selection" section (thesis step 2): shown when architectures.csv is present."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auglens import analysis
from auglens.report import build_report


def write_architectures_csv(folder: Path, names=("efficientnet_b0", "resnet18", "densenet121"), epochs=3) -> Path:
    """A table as ``auglens architectures`` writes it: a validation and a test row per architecture and epoch."""
    rng = np.random.default_rng(1)
    rows = []
    for name in names:
        seconds = np.cumsum(rng.uniform(1, 3, epochs))
        for epoch in range(1, epochs + 1):  # counted from 1, as the log counts them
            for split in ("validation", "test"):
                rows.append({"architecture": name, "epoch": epoch, "split": split,
                             **dict(zip(analysis.PERFORMANCE_METRICS, rng.uniform(0.3, 0.9, 4))),
                             "seconds": seconds[epoch - 1]})
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(analysis.ARCHITECTURE_COLUMNS)).to_csv(folder / "architectures.csv", index=False)
    return folder / "architectures.csv"


def _section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', page)


def test_no_section_without_the_table(built_report):
    page = built_report.read_text(encoding="utf-8")
    assert 'id="architectures"' not in page and "Architecture selection" not in page
    assert not (built_report.parent / "figures" / "architecture_curves.png").exists()


def test_section_beside_a_study(make_study):
    study = make_study(augmentations=("affine",), seeds=(1,), n_images=20, metrics=["mad"])
    table = write_architectures_csv(study)
    page = build_report(study, n_boot=50, n_perm=100, browser_images=0).read_text(encoding="utf-8")
    ids = _section_ids(page)
    assert "architectures" in ids and ids.index("architectures") < ids.index("performance")
    assert "<h2>Architecture selection</h2>" in page
    assert 'href="../architectures.csv"' in page  # listed among the study's files
    for name in ("architecture_curves", "architecture_time"):
        assert (study / "report" / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    saved = pd.read_csv(study / "report" / "tables" / "architecture_summary.csv")
    pd.testing.assert_frame_equal(saved, analysis.architecture_summary(pd.read_csv(table)), check_dtype=False)
    for name in ("efficientnet_b0", "resnet18", "densenet121"):
        assert f"<td>{name}</td>" in page

    table.unlink()  # gone again: so is the section, and its files
    page = build_report(study, n_boot=50, n_perm=100, browser_images=0).read_text(encoding="utf-8")
    assert "architectures" not in _section_ids(page)
    assert not (study / "report" / "figures" / "architecture_curves.png").exists()


def test_a_folder_with_only_the_table_reports_it(tmp_path):
    write_architectures_csv(tmp_path / "arch", names=("tiny_cnn", "small_cnn"))
    page = build_report(tmp_path / "arch").read_text(encoding="utf-8")
    assert _section_ids(page) == ["architectures"]
    assert "auglens architecture selection" in page


def test_a_table_without_its_columns_is_named(tmp_path):
    csv = write_architectures_csv(tmp_path / "arch")
    pd.read_csv(csv).drop(columns=["seconds", "split"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"lacks columns \['split', 'seconds'\]"):
        build_report(tmp_path / "arch")

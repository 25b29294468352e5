"""The results.md helpers the benchmarks share (``benchmarks/_results.py``)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
results = pytest.importorskip("benchmarks._results")


def test_write_section_replaces_only_its_own_block(tmp_path):
    path = tmp_path / "results.md"
    results.write_section("a", "first", path)
    results.write_section("b", "other", path)
    results.write_section("a", "second", path)
    text = path.read_text()
    assert "second" in text and "first" not in text and "other" in text
    assert text.index("begin:a") < text.index("begin:b")


def test_provenance_names_the_commits_that_scored_the_rows(monkeypatch):
    monkeypatch.setattr(results, "git_commit", lambda: "head123")
    rows = [{"command": "python x.py --a", "commit": "abc"}, {"command": "python x.py --b", "commit": "def"},
            {"command": "python x.py --a"}]
    first, blank, *commands = results.provenance(rows)
    assert "rows scored at commit abc, def, not recorded for 1" in first and "drawn at commit head123" in first
    assert commands == ["    python x.py --a", "    python x.py --b", ""]


def test_stamp_keeps_the_command_and_commit(monkeypatch):
    monkeypatch.setattr(results, "git_commit", lambda: "c0ffee")
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--steps", "3"])
    stamp = results.stamp()
    assert stamp["commit"] == "c0ffee" and stamp["command"].endswith("x.py --steps 3")


def test_a_work_dir_keeps_one_dataset_size(tmp_path):
    clevrer = pytest.importorskip("benchmarks._clevrer")
    results = tmp_path / "work" / "results.json"
    clevrer.check_dataset(results, {"videos": 600})
    clevrer.save_row(results, "aloe", {"steps": 1})
    clevrer.check_dataset(results, {"videos": 600})            # the same size: fine
    with pytest.raises(SystemExit, match="trained on {'videos': 600}, not {'videos': 4000}"):
        clevrer.check_dataset(results, {"videos": 4000})


def test_mean_se_matches_numpy_and_skips_nan():
    import numpy as np

    values = [0.31, 0.48, 0.22, float("nan")]
    kept = np.array(values[:3]) * 100
    assert results.mean_se(values, 100) == f"{kept.mean():.3f} ± {kept.std(ddof=1) / np.sqrt(3):.3f}"
    assert results.mean_se([0.5, float("nan")]) == "0.500"          # one seed: no error
    assert results.mean_se([float("nan")]) == "n/a"

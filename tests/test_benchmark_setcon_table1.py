"""Smoke test of benchmarks/setcon_table1.py: a row trained by the script and a `slotvideo train` run scored
by its evaluation give the same columns."""
import pytest

from slotvideo.cli import main

t1 = pytest.importorskip("benchmarks.setcon_table1")

TINY = ["data.params.num_frames=4", "data.train.num=8", "data.val.num=4", "data.batch_size=4",
        "model.decoder_frames=1"]
COLUMNS = {"mse_pred", "mse_slots", "fg_ari_pred", "fg_ari_slots", "fg_ari_attention", "separation",
           "mask_confidence", "probe_r2"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("setcon_cache")


def test_run_job_trains_and_scores(cache):
    overrides = t1.BUDGETS["bouncing_balls"]["overrides"] + TINY + [f"data.cache_dir={cache}"]
    result = t1.run_job(t1.Job("bouncing_balls", "setcon", "slot_attention", 0, 4, overrides, None, False))
    assert result["steps"] == 4 and COLUMNS | {"probe_r2_init"} <= set(result["metrics"])
    assert result["loss_first"] > 0


def test_score_runs_scores_a_workbench_checkpoint(cache, tmp_path, capsys):
    overrides = t1.BUDGETS["bouncing_balls"]["overrides"] + TINY
    assert main(["train", str(t1.ROOT / "configs" / "setcon" / "bouncing_balls.yaml"), *overrides, "train.steps=2",
                 "train.eval_every=0", "train.media_every=0", f"run.dir={tmp_path}", "run.name=tiny",
                 f"data.cache_dir={cache}", "--no-progress"]) == 0
    [row] = t1.score_runs([str(tmp_path / "tiny")])
    assert row["step"] == 2 and COLUMNS <= set(row["metrics"])
    assert 1 / 4 - 1e-6 <= row["metrics"]["mask_confidence"] <= 1 + 1e-6
    assert "(step 2)" in capsys.readouterr().out


def test_work_folder_keeps_each_run(cache, tmp_path):
    overrides = t1.BUDGETS["bouncing_balls"]["overrides"] + TINY + [f"data.cache_dir={cache}"]
    job = t1.Job("bouncing_balls", "slotwise", "slot_attention", 0, 2, overrides, None, True, str(tmp_path))
    first = t1.run_job(job)
    assert not first.get("cached") and job.cache_path().exists() and job.cache_path().with_suffix(".pt").exists()
    again = t1.run_job(job)
    assert again["cached"] and again["job"] == job
    assert again["metrics"] == first["metrics"] and again["steps"] == first["steps"]
    assert again["masks"].equal(first["masks"]) and again["video"].equal(first["video"])
    # anything that decides the run names another file: a new seed or override trains again
    other = t1.Job("bouncing_balls", "slotwise", "slot_attention", 1, 2, overrides, None, False, str(tmp_path))
    changed = t1.Job("bouncing_balls", "slotwise", "slot_attention", 0, 2, overrides + ["optim.main.lr=2e-4"], None,
                     True, str(tmp_path))
    assert len({job.cache_path(), other.cache_path(), changed.cache_path()}) == 3
    assert t1.load_cached(other) is None and t1.load_cached(changed) is None
    assert t1.Job("bouncing_balls", "slotwise", "slot_attention", 0, 2, overrides, None, True).cache_path() is None

"""benchmarks/vim_common.py's ``load``: one checkpoint read gives the model (in eval mode) and its step."""
import pytest

from slotvideo.cli import main
from slotvideo.models.vim import VIM

vc = pytest.importorskip("benchmarks.vim_common")


def test_load_gives_the_eval_model_and_its_step(tmp_path):
    overrides = ["data.train.num=4", "data.val.num=2", "data.batch_size=2", "data.params.num_frames=4",
                 "model.curriculum_max=4", "train.steps=2", "train.eval_every=0", "train.media_every=0"]
    assert main(["train", str(vc.ROOT / "configs" / "vim" / "random_walk.yaml"), *overrides,
                 f"run.dir={tmp_path}", "run.name=tiny", f"data.cache_dir={tmp_path / 'cache'}", "--no-progress"]) == 0
    model, step = vc.load(tmp_path / "tiny")
    assert isinstance(model, VIM) and not model.training and step == 2

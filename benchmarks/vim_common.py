"""Shared by the VIM benchmarks: train a config through the workbench, load it, score it on Random Walk.

* :func:`train_run` runs ``slotvideo train`` (the workbench: checkpoints, metrics.jsonl) unless the run
  directory already holds a finished checkpoint, so an interrupted benchmark resumes where it stopped.
* :func:`match_slots_to_balls` is the evaluation matching of VIM 5.1: each ball gets the slot whose centroid
  (of what the slot draws, ``object_centroids``) on the FIRST frame is closest (one-to-one, Hungarian), kept for the whole sequence.
* :func:`module_histogram` counts, over every ball transition, which module the matched slot selected
  against the ground-truth direction (Figure 2 left).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from slotvideo.data import DIRECTIONS, MOVE_NAMES, collate, open_dataset  # noqa: E402
from slotvideo.metrics.matching import linear_sum_assignment  # noqa: E402
from slotvideo.models.vim import object_centroids  # noqa: E402
from slotvideo.train.checkpoint import load_run  # noqa: E402

IMG = ROOT / "docs" / "img"

# The CPU budget shared by the VIM benchmarks (what differs from configs/vim/*.yaml): the 32x32 Random Walk
# at half scale (16x16, balls of radius 1.5 stepping 2 px) and 4,000 training steps: 3,000 of slot-attention
# pre-training on first frames (fast: ~7 steps/s, first frames only), then clips of 3, 4, 5 frames (+1 every
# 150 steps). The discovery slots start from one learned vector per slot and the decoder broadcasts at full
# resolution. The mixture's pixel std is 0.5 (the paper does not give it; the configs use 0.1): measured on
# first-frame pre-training (seed 0), sigma 0.1 left the one-slot background plateau (MSE 0.029) only after
# ~500 steps and was still at MSE 0.020 / first-frame FG-ARI 0.63 after 2,000 with one slot covering the
# image, while sigma 0.5 reached MSE 0.0044 / FG-ARI 0.94 after 3,000 (sigma 0.3: 0.0057 / 0.91). The 2,000-
# step budget of the first round (1,000 pre-training steps, sigma 0.1) never segmented the balls, so every
# dynamics experiment read slots that did not hold one ball each. Two models train at a time, 1 thread each.
STEPS = 4000
DATA_PARAMS = {"resolution": 16, "num_frames": 10, "num_objects": 3, "radius": 1.5, "step": 2}
CPU_OVERRIDES = [
    "model.resolution=16", "data.params.resolution=16", "data.params.radius=1.5", "data.params.step=2",
    "model.encoder_stride=1", "model.broadcast_resolution=0", "model.pretrain_steps=3000",
    "model.slot_init=learned", "model.sigma=0.5",
    "model.curriculum_start=3", "model.curriculum_increment=1", "model.curriculum_every=150",
    "model.curriculum_max=5", "train.eval_every=1000", "train.ckpt_every=250", "train.media_every=1000",
    "train.log_every=25", "data.batch_size=16", "optim.main.lr=1e-3",
]

def equal_bank(modules: int) -> list[str]:
    """A module bank of ``modules`` modules with the 4-module bank's transition parameter count (50.6k): width
    144 for 1 module (51.4k), 96 for 2 (50.2k), 56 for 5 (50.8k)."""
    width = {1: 144, 2: 96, 5: 56}[modules]
    return [f"model.num_modules={modules}", f"model.module_hidden=[{width},{width},{width}]"]


#: the recipe under which the modules learn the moves (``vim4bal``; see the comments of ``RUNS``)
BAL = ["model.selection_bound=5", "model.candidate_keys=state", "model.usage_weight=20"]
#: ``vim5balu``'s recipe: 5 modules of the 4-module width, load balancing only for the first 9,000 steps
BALU5 = ["model.num_modules=5", *BAL, "model.usage_until=9000"]
# name -> (config file, extra overrides): the runs the benchmarks share
RUNS = {"vim4": ("random_walk", []), "vim5": ("random_walk", ["model.num_modules=5"]),
        # sigma 0.5 weakens the likelihood 25x against the KL terms; kl_weight 0.04 restores sigma 0.1's balance
        "vim4kl": ("random_walk", ["model.kl_weight=0.04"]),
        # selection logits bounded to [-5, 5] (5 * cosine): the unbounded scaled dot product saturated on module 0
        # in vim4 / vim4kl, so the other modules got no gradient; with kl_weight 0.04 and with the paper's 1
        "vim4cos": ("random_walk", ["model.kl_weight=0.04", "model.selection_bound=5"]),
        "vim4cos1": ("random_walk", ["model.selection_bound=5"]),
        "vim4cos_kl02": ("random_walk", ["model.selection_bound=5", "model.kl_weight=0.2"]),   # a branch of vim4cos
        # ... and keys read from the candidate next states LayerNorm(h + s_m), not the module outputs s_m: the
        # posterior query reads the target frame's grouping x, which says where the ball IS, not how it moved
        "vim4st": ("random_walk", ["model.kl_weight=0.04", "model.selection_bound=5", "model.candidate_keys=state"]),
        "vim4st1": ("random_walk", ["model.selection_bound=5", "model.candidate_keys=state"]),
        # ... with straight-through one-hot selections while training: each transition moves one module, so
        # the modules are not all pulled towards the mean move of the relaxed mixture
        "vim4st1h": ("random_walk", ["model.selection_bound=5", "model.candidate_keys=state", "model.hard_train=true"]),
        # ... and a load-balancing term on the posterior's batch module usage (usage_weight; not in the paper):
        # at kl_weight 1 the selections of vim4st1 / vim4st1h went to a single module (perplexity 1.01)
        "vim4bal": ("random_walk", BAL),
        # Figure 3 and Figure 2 (right) at the vim4bal recipe: 2 and 5 modules with vim2eq / vim5eq's equal
        # transition parameter count (the load-balancing term is the same KL to uniform usage over M modules)
        "vim2bal": ("random_walk", [*equal_bank(2), *BAL]),
        "vim5bal": ("random_walk", [*equal_bank(5), *BAL]),
        # Experiment 1 with 5 modules of the 4-module width (5.1 does not equalise parameters): load balancing
        # only for the first 9,000 steps (vim4bal's rules had formed by then), then off, so that a superfluous
        # module can fall out of use
        "vim5balu": ("random_walk", BALU5),
        # vim5balu's second seed
        "vim5balu_s1": ("random_walk", [*BALU5, "seed=1"]),
        # vim5balu with straight-through one-hot selections once balancing ends (a branch at step 9,000): with a
        # learned prior, two modules that share a direction cost the module KL no more than one, so nothing in
        # the relaxed objective removes a duplicate; a hard choice per transition trains only the chosen module
        "vim5baluh": ("random_walk", [*BALU5, "model.hard_train=true"]),
        "vim4balh": ("random_walk", [*BAL, "model.hard_train=true"]),
        "vim4bal_s1": ("random_walk", [*BAL, "seed=1"]),
        # the monolithic counterpart of vim4bal (the composition experiment's baseline, 5.2): one module of width 144, as vim1
        "vim1bal": ("random_walk", [*equal_bank(1), *BAL]),
        "scoff": ("scoff", []), "rim": ("rim", []),
        # monolithic VIM (Figure 3 / 5.2 baseline) and Figure 3's 2 and 5 modules, with the 4-module bank's
        # parameter count
        "vim1": ("random_walk", equal_bank(1)), "vim2eq": ("random_walk", equal_bank(2)),
        "vim5eq": ("random_walk", equal_bank(5))}
# name -> (parent run, step): runs that continue a parent's checkpoint at ``step`` with their own overrides
# (same data order and optimizer state up to there; only the objective changes)
BRANCHES = {
    # vim4cos at 5,000 steps tracks through z while the modules sit idle: make KL_z 5x dearer
    "vim4cos_kl02": ("vim4cos", 5000),
    # pre-training (first frames only: no selection, no KL) is the same for every VIM run; these two start
    # from vim4st1h's step-3,000 checkpoint, the end of its pre-training
    "vim4bal": ("vim4st1h", 3000), "vim4balh": ("vim4st1h", 3000),
    "vim5baluh": ("vim5balu", 9000),
}
#: the VIM runs of :data:`RUNS` (the others are the RIM / SCOFF baselines)
VIM_RUNS = [name for name in RUNS if name.startswith("vim")]


def train_run(name: str, run_dir: Path, steps: int = STEPS) -> Path:
    """Train run ``name`` of :data:`RUNS` as ``run_dir/<name>`` for ``steps`` steps (resuming if stopped)."""
    config, extra = RUNS[name]
    overrides = [*CPU_OVERRIDES, *extra]
    run = run_dir / name
    last = run / "checkpoints" / "last.ckpt"
    if last.exists() and _finished(run, steps):
        return run
    if name in BRANCHES and not last.exists():
        _branch(name, run_dir)
    cmd = ["slotvideo", "train", str(ROOT / "configs" / "vim" / f"{config}.yaml"), f"run.dir={run_dir}",
           f"run.name={name}", f"train.steps={steps}", *overrides, "--no-progress"]
    if last.exists():
        cmd.append("run.resume=true")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(cmd, check=True, env=env)
    return run


def _branch(name: str, run_dir: Path) -> None:
    """Start run ``name`` from its parent's checkpoint (:data:`BRANCHES`), training the parent that far first."""
    import shutil
    parent, step = BRANCHES[name]
    source = run_dir / parent / "checkpoints" / f"step_{step:07d}.ckpt"
    if not source.exists():
        if _finished(run_dir / parent, step):
            raise FileNotFoundError(f"{source}: {parent} is past step {step} and that checkpoint was pruned; "
                                    f"retrain {parent} in another run dir to branch {name}")
        train_run(parent, run_dir, step)
    (run_dir / name / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, run_dir / name / "checkpoints" / "last.ckpt")


def _finished(run: Path, steps: int) -> bool:
    import json
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    return any(json.loads(line).get("step", 0) >= steps for line in lines if line.strip())


def load(run: Path) -> tuple[Any, int]:
    """The run's last checkpoint, in eval mode, and the training step of its weights (metrics may run past it)."""
    _, model, step = load_run(run)
    return model, step


def test_batches(name: str, params: dict[str, Any], num: int, batch_size: int, seed: int = 0):
    """Batches of the held-out ``test`` split of a random-walk dataset."""
    data = open_dataset(name, "test", num=num, seed=seed, params=params)
    for start in range(0, num, batch_size):
        yield collate([data[i] for i in range(start, min(start + batch_size, num))])


def match_slots_to_balls(centroids0: torch.Tensor, positions0: torch.Tensor) -> np.ndarray:
    """Slot centroids ``centroids0 [B, K, 2]`` (:func:`object_centroids`) and ball centres ``positions0
    [B, N, 2]`` of frame 0 -> slot of each ball ``[B, N]`` (Hungarian matching on distance)."""
    dist = torch.cdist(positions0.float(), centroids0.float())            # [B, N, K]
    out = np.zeros(positions0.shape[:2], dtype=np.int64)
    for b in range(dist.shape[0]):  # the Hungarian solver works on one matrix at a time
        rows, cols = linear_sum_assignment(dist[b])
        out[b, rows] = cols
    return out


def match_slots(model: Any, slots0: torch.Tensor, positions0: torch.Tensor) -> np.ndarray:
    """Slot of each ball ``[B, N]``, matched on the decoded frame-0 slots ``[B, K, D]`` (see above)."""
    return match_slots_to_balls(object_centroids(model.decode(slots0)), positions0)


def gather_slots(x: torch.Tensor, slot_of_ball: np.ndarray) -> torch.Tensor:
    """``x [B, T, K, ...]`` -> ``[B, T, N, ...]``: the matched slot of each ball."""
    index = torch.as_tensor(slot_of_ball)[:, None, :].expand(-1, x.shape[1], -1)
    return x.gather(2, index.reshape(*index.shape, *([1] * (x.dim() - 3))).expand(-1, -1, -1, *x.shape[3:]))


def module_histogram(model: Any, batches, num_modules: int, sample: bool = True) -> np.ndarray:
    """``hist[direction, module]``: how often the slot of a ball moving in ``direction`` selected ``module``
    (``sample``: Gumbel-sampled selections and sampled z, seed 0; otherwise the posterior's mode)."""
    hist = np.zeros((len(MOVE_NAMES), num_modules), dtype=np.int64)
    torch.manual_seed(0)
    with torch.no_grad():
        for batch in batches:
            out = model.infer(batch.video, iterations=1, sample=sample)
            slot_of_ball = match_slots(model, out["slots"][:, 0], batch.positions[:, 0])
            chosen = out["selection"][:, :, 0].argmax(-1)                 # [B, T-1, K]
            chosen = gather_slots(chosen, slot_of_ball)                   # [B, T-1, N]
            moves = batch.moves                                           # [B, T-1, N]
            valid = moves >= 0
            np.add.at(hist, (moves[valid].numpy(), chosen[valid].numpy()), 1)
    return hist


def direction_scores(hist: np.ndarray) -> tuple[list[int], list[float]]:
    """Best module of each direction and the share of that direction's transitions it explains."""
    totals = hist.sum(1, keepdims=True).clip(min=1)
    share = hist / totals
    return [int(m) for m in share.argmax(1)], [float(s) for s in share.max(1)]


__all__ = ["DIRECTIONS", "MOVE_NAMES", "IMG", "ROOT", "STEPS", "DATA_PARAMS", "CPU_OVERRIDES", "RUNS", "BRANCHES", "VIM_RUNS", "train_run", "load", "test_batches", "match_slots_to_balls", "match_slots",
           "gather_slots", "module_histogram", "direction_scores"]


def main() -> None:
    """Train the named runs of :data:`RUNS` (``--jobs`` at a time) so the experiment scripts only score them."""
    import argparse
    from concurrent.futures import ThreadPoolExecutor
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("runs", nargs="*", default=list(RUNS), help=f"runs to train (default all: {' '.join(RUNS)})")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/vim_bench"))
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one torch thread each")
    args = parser.parse_args()
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {sorted(RUNS)}")
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for run in pool.map(lambda name: train_run(name, args.run_dir, args.steps), args.runs):
            print(f"trained {run}")


if __name__ == "__main__":
    main()

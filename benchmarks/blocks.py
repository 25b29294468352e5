"""Forward+backward time of our slot attention and spatial broadcast decoder.

Slot attention is compared, at the same sizes, with lucidrains' ``slot-attention`` package from PyPI
(``pip install slot-attention``). Its q/k/v projections carry biases, which the paper's (and ours) do not,
and a key bias cannot be re-associated away; so for the agreement check its biases are zeroed, every other
weight is copied from ours, and both draw the initial slots from the same seeded ``torch.randn`` call.

    python benchmarks/blocks.py            # full table, written to docs/results.md
    python benchmarks/blocks.py --quick    # two sizes, few repeats (a smoke run)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import command, machine, write_section  # noqa: E402
from slotvideo.nn.decoders import SpatialBroadcastDecoder  # noqa: E402
from slotvideo.nn.slot_attention import SlotAttention  # noqa: E402


def time_ms(steps: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time (ms) of each step after two warm-up calls.

    The steps take turns within every repeat, so a busy machine slows all of them alike instead of
    whichever happened to run while it was busy.
    """
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(repeats + 2):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            step()
            sync()
            if r >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def lucidrains_copy(ours: SlotAttention):
    """lucidrains' SlotAttention carrying our weights (biases zeroed), or None if it is not installed."""
    try:
        from slot_attention import SlotAttention as TheirSlotAttention
    except ImportError:
        return None
    dim = ours.slot_dim
    if ours.attention.input_dim != dim or ours.mlp.net[1].out_features < dim:
        raise ValueError("lucidrains' SlotAttention needs input_dim == slot_dim and mlp_hidden >= slot_dim")
    theirs = TheirSlotAttention(ours.num_slots, dim, iters=ours.iterations, eps=ours.attention.eps,
                                hidden_dim=ours.mlp.net[1].out_features)
    with torch.no_grad():
        theirs.slots_mu.copy_(ours.init.mu.view(1, 1, dim))
        theirs.slots_logsigma.copy_(ours.init.log_sigma.view(1, 1, dim))
        for name in ("to_q", "to_k", "to_v"):
            getattr(theirs, name).weight.copy_(getattr(ours.attention, name).weight)
            getattr(theirs, name).bias.zero_()
        theirs.norm_input.load_state_dict(ours.attention.norm_inputs.state_dict())
        theirs.norm_slots.load_state_dict(ours.norm_slots.state_dict())
        theirs.gru.load_state_dict(ours.gru.state_dict())
        theirs.norm_pre_ff.load_state_dict(ours.mlp.net[0].state_dict())
        theirs.mlp[0].load_state_dict(ours.mlp.net[1].state_dict())
        theirs.mlp[2].load_state_dict(ours.mlp.net[3].state_dict())
    return theirs


def slot_attention_rows(sizes, repeats: int, device: torch.device) -> list[str]:
    rows = []
    for b, n, d, k, iters in sizes:
        torch.manual_seed(0)
        ours = SlotAttention(d, slot_dim=d, num_slots=k, iterations=iters, mlp_hidden=128).to(device)
        theirs = lucidrains_copy(ours)
        theirs = theirs.to(device) if theirs is not None else None
        x = torch.randn(b, n, d, device=device, requires_grad=True)

        def run(module, returns_tensor: bool):
            torch.manual_seed(1)
            out = module(x)
            return out if returns_tensor else out.slots  # lucidrains returns only the slots

        def step(module, returns_tensor=False):
            def go() -> None:
                run(module, returns_tensor).square().mean().backward()
            return go

        naive = SlotAttention(d, slot_dim=d, num_slots=k, iterations=iters, mlp_hidden=128, fast=False).to(device)
        naive.load_state_dict(ours.state_dict())
        steps = {"fast": step(ours), "naive": step(naive)}
        if theirs is not None:
            steps["theirs"] = step(theirs, returns_tensor=True)
        ms = time_ms(steps, repeats, device)
        if theirs is None:
            rows.append(f"| {b} | {n} | {d} | {k} | {iters} | {ms['fast']:.1f} | {ms['naive']:.1f} "
                        "| not installed | - | - |")
            continue
        with torch.no_grad():
            diff = (run(ours, False) - run(theirs, True)).abs().max().item()
        rows.append(f"| {b} | {n} | {d} | {k} | {iters} | {ms['fast']:.1f} | {ms['naive']:.1f} | {ms['theirs']:.1f} "
                    f"| {ms['theirs'] / ms['fast']:.2f}x | {diff:.1e} |")
        print(rows[-1], flush=True)
    return rows


def decoder_rows(sizes, repeats: int, device: torch.device) -> list[str]:
    rows = []
    for slots, d, res, broadcast, chunk in sizes:
        torch.manual_seed(0)
        dec = SpatialBroadcastDecoder(d, res, channels=(64,) * 4, kernel_sizes=5,
                                      broadcast_resolution=broadcast).to(device)
        z = torch.randn(slots // 4, 4, d, device=device, requires_grad=True)  # K = 4 slots per image

        separable = dec.separable_first

        def step(chunk_size, use_checkpoint, per_tap=separable):
            def go() -> None:
                dec.checkpoint, dec.separable_first = use_checkpoint, per_tap
                dec(z, chunk_size=chunk_size).recon.square().mean().backward()
            return go

        steps = {"full": step(None, False), "chunked": step(chunk, True)}
        if separable:   # the first conv over the broadcast grid, as before the per-tap path
            steps["grid"] = step(None, False, per_tap=False)
        ms = time_ms(steps, repeats, device)
        layout = f"{res}x{res} full-res" if broadcast is None else f"{broadcast}x{broadcast} -> {res}x{res} up"
        grid = f"{ms['grid']:.1f}" if separable else "-"
        rows.append(f"| {slots} | {d} | {layout} | {ms['full']:.1f} | {grid} | {chunk} | {ms['chunked']:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sizes, few repeats; do not write results")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 3 if args.quick else 10

    # (B, N, D, K, iterations)
    sa_sizes = [(32, 1024, 64, 4, 3), (8, 256, 64, 7, 3)] if args.quick else [
        (32, 256, 64, 4, 3), (32, 1024, 64, 4, 3), (32, 1024, 64, 7, 3), (8, 4096, 64, 7, 3),
        (64, 1024, 64, 11, 3)]
    # (B*T*K slots, latent dim, output resolution, broadcast resolution or None, chunk size)
    dec_sizes = [(32, 64, 32, 8, 8)] if args.quick else [
        (32, 64, 32, 8, 8), (32, 64, 64, 8, 8), (32, 64, 32, None, 8)]

    print("| B | N | D | K | iters | ours ms | ours naive ms | lucidrains ms | speedup | max abs diff |")
    sa = slot_attention_rows(sa_sizes, repeats, device)
    print("| slots | D | layout | ms | first conv on the grid ms | chunk | chunked+checkpoint ms |")
    dec = decoder_rows(dec_sizes, max(3, repeats // 2), device)  # convs are slow on CPU

    text = "\n".join([
        "## Building blocks: slot attention and spatial broadcast decoder (forward + backward)",
        "",
        f"Machine: {machine()}, torch threads: {torch.get_num_threads()}. Command: `{command()}`.",
        "The timed steps take turns within every repeat, so load from other processes hits all columns alike.",
        "",
        "Slot attention: median ms of forward+backward (gradient into the inputs too). *ours* re-associates",
        "the key/value projections onto the K slots; *ours naive* projects all N inputs (same weights);",
        "*lucidrains* is `slot-attention` from PyPI with our weights copied in and its q/k/v biases zeroed;",
        "*max abs diff* compares the returned slots (same seed for the initial-slot noise).",
        "",
        "| B | N | D | K | iters | ours ms | ours naive ms | lucidrains ms | speedup | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *sa,
        "",
        "Spatial broadcast decoder (4 conv layers of 64 channels, 5x5), median ms of forward+backward;",
        "the last column decodes in chunks with gradient checkpointing (bounded memory, recomputed in backward).",
        "Full-resolution layouts compute the first conv per kernel tap without building the broadcast grid",
        "(`SpatialBroadcastDecoder.first_layer`, exact); *first conv on the grid* times the same decoder with",
        "the plain conv over `latent + position` channels at every pixel instead.",
        "",
        "| slots | D | layout | ms | first conv on the grid ms | chunk | chunked+checkpoint ms |",
        "|---|---|---|---|---|---|---|",
        *dec,
    ])
    if not args.quick:
        write_section("blocks", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Pictures: reconstruction grids and training curves are written as PNGs of the expected size."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from slotvideo.errors import DataError, ShapeError
from slotvideo.viz.curves import plot_curves, read_metrics
from slotvideo.viz.grids import reconstruction_grid, save_png

T, K, H, W = 5, 3, 6, 7


def clip():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(T, 3, H, W, generator=g)
    masks = torch.softmax(torch.randn(T, K, H, W, generator=g), dim=1)
    rgb = torch.rand(T, K, 3, H, W, generator=g)
    return video, video.flip(-1), masks, rgb


def test_grid_layout_and_cells(tmp_path):
    video, recon, masks, rgb = clip()
    pad = 2
    img = reconstruction_grid(video, recon, masks, rgb, max_frames=3, pad=pad)
    assert img.dtype == np.uint8 and img.shape == ((2 + K) * (H + pad) + pad, 3 * (W + pad) + pad, 3)

    def cell(r, c):
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        return img[y:y + H, x:x + W].astype(float) / 255

    shown = [0, 2, 4]  # 3 of 5 frames, evenly spaced, ends included
    for c, t in enumerate(shown):
        np.testing.assert_allclose(cell(0, c), video[t].permute(1, 2, 0).numpy(), atol=1 / 255)
        np.testing.assert_allclose(cell(1, c), recon[t].permute(1, 2, 0).numpy(), atol=1 / 255)
        m = masks[t, 1, ..., None].numpy()
        np.testing.assert_allclose(cell(3, c), m * rgb[t, 1].permute(1, 2, 0).numpy() + 1 - m, atol=1 / 255)
    assert np.all(img[:pad] == 255) and np.all(img[:, -pad:] == 255)


def test_grid_without_per_slot_rgb_shows_masks(tmp_path):
    video, recon, masks, _ = clip()
    img = reconstruction_grid(video, recon, masks, max_frames=8, pad=0)
    assert img.shape == ((2 + K) * H, T * W, 3)
    np.testing.assert_allclose(img[2 * H:3 * H, :W, 0] / 255, masks[0, 0].numpy(), atol=1 / 255)
    out = save_png(tmp_path / "media" / "grid.png", img)
    with Image.open(out) as im:
        assert im.size == (T * W, (2 + K) * H)
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png"]


def test_grid_rejects_mismatched_shapes():
    video, recon, masks, rgb = clip()
    with pytest.raises(ShapeError, match="masks"):
        reconstruction_grid(video, recon, masks[..., :-1])
    with pytest.raises(ShapeError, match="per_slot_rgb"):
        reconstruction_grid(video, recon, masks, rgb[:, :2])
    with pytest.raises(ShapeError, match="uint8"):
        save_png("x.png", np.zeros((4, 4, 3), np.float32))


def test_curves_png_and_tolerant_reading(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1 / (s + 1), "lr": 1e-3, "phase": "train", "done": False})
             for s in range(10)]
    lines.insert(3, json.dumps({"note": "no step here"}))
    lines.append(json.dumps({"step": 10, "ari": 0.5}))
    path.write_text("\n".join(lines) + '\n{"step": 11, "loss": 0.0')  # partial last line
    series = read_metrics(path)
    assert sorted(series) == ["ari", "loss", "lr"]
    assert series["loss"][0] == list(range(10))
    out = plot_curves(path, tmp_path / "curves.png")
    with Image.open(out) as im:
        assert im.size == (3 * 400, 300)
    out = plot_curves(path, tmp_path / "loss.png", keys=["loss"])
    with Image.open(out) as im:
        assert im.size == (400, 300)
    with pytest.raises(DataError, match="accuracy"):
        plot_curves(path, tmp_path / "x.png", keys=["accuracy"])


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "loss": 1}\n{"step": 1, "lo\n{"step": 2, "loss": 0.5}\n')
    with pytest.raises(DataError, match="metrics.jsonl line 2"):
        read_metrics(path)


def test_media_grid_draws_the_first_clip_of_a_models_media():
    from slotvideo.viz.grids import media_grid

    video, masks = torch.rand(2, 3, 3, 8, 8), torch.rand(2, 3, 4, 8, 8).softmax(dim=2)
    rgb = torch.rand(2, 3, 4, 3, 8, 8)
    full = {"video": video, "recon": video.flip(0), "masks": masks, "per_slot_rgb": rgb, "attention": masks}
    assert np.array_equal(media_grid(full), reconstruction_grid(video[0], video[1], masks[0], per_slot_rgb=rgb[0]))
    # no reconstruction: the input stands in for it
    assert np.array_equal(media_grid({"video": video, "masks": masks}), reconstruction_grid(video[0], video[0], masks[0]))

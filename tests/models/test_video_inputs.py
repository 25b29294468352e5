"""Models' segment / rollout take a tensor, a video file, a folder of frames, a .npy or a uint8 array."""
import numpy as np
import torch
from PIL import Image

from slotvideo.data.video_io import write_video
from slotvideo.models.slot_attention_video import SlotAttentionVideo

TINY = dict(resolution=16, num_slots=3, slot_dim=8, hidden=16, feature_dim=8, encoder_channels=[8],
            encoder_kernel=3, decoder_channels=[8], decoder_kernel=3, broadcast_resolution=16,
            iters_first=1, iters=1, transition_hidden=8)


def test_segment_and_rollout_accept_files_and_arrays(tmp_path):
    torch.manual_seed(0)
    model = SlotAttentionVideo(SlotAttentionVideo.Config(**TINY)).eval()
    frames = (np.random.default_rng(0).random((4, 24, 20, 3)) * 255).astype(np.uint8)  # another size
    np.save(tmp_path / "clip.npy", frames)
    write_video(tmp_path / "clip.gif", frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    for video in (frames, tmp_path / "clip.npy", str(tmp_path / "clip.gif"), folder):
        masks = model.segment(video)
        assert masks.shape == (1, 4, 3, 16, 16)  # read, resized to the model's resolution, batch of one
        torch.testing.assert_close(masks.sum(2), torch.ones(1, 4, 16, 16))
    tensor = torch.rand(2, 4, 3, 16, 16)
    assert model.segment(tensor).shape == (2, 4, 3, 16, 16)  # tensors pass through unchanged
    out = model.rollout(tmp_path / "clip.npy", 2)
    assert out.recon.shape[:2] == (1, 2)

"""`slotvideo data generate` and `slotvideo data show` end to end."""
import json

from PIL import Image

from slotvideo.cli import main


def test_generate_then_show(tmp_path, capsys):
    out = tmp_path / "gw"
    argv = ["data", "generate", "gridworld", "--num", "5", "--seed", "1", "--out", str(out),
            "--shard-size", "2", "--param", "num_frames=6"]
    assert main(argv) == 0
    assert str(out) in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["num"] == 5 and meta["params"]["num_frames"] == 6 and len(meta["shards"]) == 3
    assert main(argv) == 0  # rerun: nothing left to do
    gif = tmp_path / "gw.gif"
    assert main(["data", "show", str(out), "--out", str(gif), "--index", "4", "--scale", "4"]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6
        assert im.size == ((3 * 5 + 2) * 4, 5 * 4)  # video | masks | overlay with 1-pixel gaps


def test_show_from_a_generator_name(tmp_path):
    gif = tmp_path / "bb.gif"
    rc = main(["data", "show", "bouncing-balls", "--out", str(gif), "--scale", "2",
               "--param", "resolution=16", "--param", "radius=2", "--param", "num_frames=3"])
    assert rc == 0
    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size == ((3 * 16 + 2) * 2, 32)


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "generate", "bouncing-balls", "--num", "2", "--out", str(tmp_path / "x"),
                 "--param", "radius=40"]) == 2
    assert "'radius' must be in [0.5, 8.0]" in capsys.readouterr().err
    assert main(["data", "generate", "gridworld", "--num", "0", "--out", str(tmp_path / "y")]) == 2
    assert "--num must be in [1, inf]" in capsys.readouterr().err
    assert main(["data", "show", str(tmp_path / "missing"), "--out", str(tmp_path / "z.gif")]) == 2
    assert "neither a generated dataset folder" in capsys.readouterr().err
    assert main(["data", "generate", "gridworld", "--num", "2", "--out", str(tmp_path / "w"),
                 "--param", "size"]) == 2
    assert "key=value" in capsys.readouterr().err

"""Downloads against a local HTTP server (Range support, one dropped connection, corrupt archives)."""
import hashlib
import http.server
import io
import re
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from slotvideo.data.clevrer import open_clevrer
from slotvideo.data.download import Archive, download_dataset, fetch, is_complete
from slotvideo.data.fixtures import write_clevrer
from slotvideo.errors import DataError


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        name = self.path.lstrip("/")
        srv.requests.append((name, self.headers.get("Range")))
        data = srv.files.get(name)
        if data is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        start = int(re.match(r"bytes=(\d+)-", header).group(1)) if header else 0
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        if header:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if name in srv.drop_once:  # send half the body, then hang up
            srv.drop_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.drop_once, srv.requests = {}, set(), []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def _stored_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_clevrer_download_resumes_after_drop_and_is_idempotent(server, tmp_path):
    src = write_clevrer(tmp_path / "src", train=(0, 1), val=(10000,), test=(15000,), frames=8, size=(16, 24))
    server.files.update({
        "videos/train/video_train.zip": _zip(src / "videos/train"),
        "videos/validation/video_validation.zip": _zip(src / "videos/val"),
        "videos/test/video_test.zip": _zip(src / "videos/test"),
        "annotations/train/annotation_train.zip": _zip(src / "annotations/train"),
        "annotations/validation/annotation_validation.zip": _zip(src / "annotations/val"),
        "questions/train.json": (src / "questions/train.json").read_bytes(),
        "questions/validation.json": (src / "questions/validation.json").read_bytes(),
        "questions/test.json": (src / "questions/test.json").read_bytes(),
        "derender_proposals.zip": _zip(src / "derender_proposals"),
    })
    server.drop_once.add("videos/train/video_train.zip")
    root = tmp_path / "CLEVRER"
    report = download_dataset("clevrer", root, base_url=server.url, backoff=0.0, log=lambda s: None)
    assert len(report.fetched) == 9 and is_complete("clevrer", root)
    ranged = [r for name, r in server.requests if name == "videos/train/video_train.zip"]
    assert ranged[0] is None and ranged[1] is not None and ranged[1].startswith("bytes=")  # resumed, not restarted
    assert not list((root / ".downloads").glob("*.zip"))  # archives are removed after unpacking
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        assert len(open_clevrer(split, params={"root": str(root)})) == n
    ds = open_clevrer("train", params={"root": str(root), "task": "descriptive"}, cache_dir=tmp_path / "c")
    assert ds[0]["video"].shape == (8, 3, 16, 24)
    before = len(server.requests)
    again = download_dataset("clevrer", root, base_url=server.url, log=lambda s: None)
    assert again.fetched == [] and len(again.skipped) == 9 and len(server.requests) == before


def test_corrupt_archive_leaves_nothing_that_looks_unpacked(server, tmp_path):
    good = _stored_zip({"lists/localize/train.txt": b"CLEVR_new_000000.avi 3\n" * 200})
    offset = good.index(b"CLEVR_new") + 1000
    server.files["x/lists.zip"] = good[:offset] + bytes([good[offset] ^ 0xFF]) + good[offset + 1:]
    archive = Archive("x/lists.zip", "unused", "all_actions/lists", "all_actions")
    root = tmp_path / "CATER"
    with pytest.raises(DataError, match="lists.zip is corrupt"):
        download_dataset("cater", root, base_url=server.url, archives=[archive], log=lambda s: None)
    assert not (root / "all_actions" / "lists").exists()
    assert not list((root / "all_actions").iterdir())  # the hidden unpack folder is gone too
    assert not list((root / ".downloads").iterdir())  # no marker, no archive kept: the next run starts over
    server.files["x/lists.zip"] = good
    download_dataset("cater", root, base_url=server.url, archives=[archive], log=lambda s: None)
    # The archive's single top folder named like the destination is not nested twice.
    assert (root / "all_actions/lists/localize/train.txt").read_bytes().startswith(b"CLEVR_new_000000.avi 3")
    assert is_complete("cater", root)


def test_not_an_archive_and_checksums(server, tmp_path):
    server.files["a.zip"] = b"this is not a zip file at all"
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        download_dataset("cater", tmp_path, base_url=server.url, archives=[Archive("a.zip", "", "a", "a")],
                         log=lambda s: None)
    data = _stored_zip({"f.txt": b"hello"})
    server.files["b.zip"] = data
    wrong = Archive("b.zip", "", "b", "b", sha256="0" * 64)
    with pytest.raises(DataError, match="SHA-256"):
        download_dataset("cater", tmp_path, base_url=server.url, archives=[wrong], log=lambda s: None)
    with pytest.raises(DataError, match="expects 3"):
        download_dataset("cater", tmp_path, base_url=server.url, archives=[Archive("b.zip", "", "b", "b", size=3)],
                         log=lambda s: None)
    right = Archive("b.zip", "", "b", "b", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    download_dataset("cater", tmp_path, base_url=server.url, archives=[right], log=lambda s: None)
    assert (tmp_path / "b" / "f.txt").read_text() == "hello"
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(f"{server.url}/missing.zip", tmp_path / "m.zip", retries=0, log=lambda s: None)


def test_interrupted_run_resumes_from_part_file(server, tmp_path):
    data = bytes(range(256)) * 1000
    server.files["big.bin"] = data
    (tmp_path / "big.bin.part").write_bytes(data[:100_000])
    fetch(f"{server.url}/big.bin", tmp_path / "big.bin", log=lambda s: None)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert server.requests == [("big.bin", "bytes=100000-")]


def test_download_command_says_kinetics_clips_are_not_downloadable(server, tmp_path, capsys):
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        body = b"label,youtube_id,time_start,time_end,split\nabseiling,abc,1,11,train\n"
        info = tarfile.TarInfo("kinetics600/train.csv")
        info.size = len(body)
        tf.addfile(info, io.BytesIO(body))
    server.files["kinetics600.tar.gz"] = buf.getvalue()
    from slotvideo.cli import main

    assert main(["data", "download", "kinetics600", "--root", str(tmp_path), "--base-url", server.url]) == 0
    out = capsys.readouterr().out
    assert "YouTube" in out and "only the annotation CSVs" in out
    assert (tmp_path / "annotations/kinetics600/train.csv").read_bytes() == body

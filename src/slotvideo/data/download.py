"""Fetch the official CLEVRER, CATER and Kinetics-600 archives and unpack them into the layouts the loaders read.

Each archive is downloaded to ``<root>/.downloads/`` as ``<file>.part`` and resumed with an HTTP
``Range`` request after a dropped connection or an interrupted run; the finished file is checked
against the size the server announced and, when the manifest knows them, its size and SHA-256. It is
unpacked into a hidden temporary folder beside its destination and only then renamed into place,
so a folder under its final name is always complete; a corrupt archive raises :class:`DataError`
and leaves nothing that looks unpacked. A per-archive ``.done`` marker makes re-runs skip finished
work, and ``<root>/.downloads/<dataset>.complete.json`` is written last, when everything is in place.

URLs: CLEVRER from data.csail.mit.edu (reference/dataset-formats.md 1.1; ``video_test.zip`` follows
the same naming pattern but is not listed there), CATER from the direct links of
``rohitgirdhar/CATER:generate/README.md``, the Kinetics-600 annotation CSVs from DeepMind's
``kinetics600.tar.gz``. Kinetics clips are YouTube videos and cannot be downloaded by this tool.
A ``base_url`` (``--base-url`` or ``$SLOTVIDEO_DOWNLOAD_BASE_URL``) replaces every host: archive
``name`` is then fetched from ``<base_url>/<name>`` (mirrors, tests).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError, DataError

BASE_URL_ENV = "SLOTVIDEO_DOWNLOAD_BASE_URL"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """One file to fetch: ``name`` is its path under a mirror base URL and names it locally."""

    name: str
    url: str
    dest: str  # folder under the root to unpack into (or to put a plain file in)
    part: str  # what --parts selects
    unpack: bool = True
    size: int | None = None
    sha256: str | None = None


_CLEVRER = "http://data.csail.mit.edu/clevrer/"


def _clevrer() -> list[Archive]:
    def archive(name: str, dest: str, part: str, unpack: bool = True) -> Archive:
        return Archive(name, _CLEVRER + name, dest, part, unpack)

    out = [archive(f"videos/{src}/video_{src}.zip", f"videos/{dst}", "videos")
           for src, dst in (("train", "train"), ("validation", "val"), ("test", "test"))]
    out += [archive(f"annotations/{src}/annotation_{src}.zip", f"annotations/{dst}", "annotations")
            for src, dst in (("train", "train"), ("validation", "val"))]
    out += [archive(f"questions/{s}.json", "questions", "questions", unpack=False)
            for s in ("train", "validation", "test")]
    out.append(archive("derender_proposals.zip", "derender_proposals", "proposals"))
    return out


_CATER_LINKS = {  # rohitgirdhar/CATER@13a19643:generate/README.md "Direct Links"
    "all_actions": ("97kztikj3zwcgv5zu2by6c1jhlvh1d7x", "6pfetd8s5k7f6bettrpfv11xiqsgou39",
                    "jr2cc6zomqb01hmzvjztpuip3h0sz8vz"),
    "all_actions_cameramotion": ("fevyo9fyzeb6vm418yaqjp3gi7tl9azb", "4u3v9rgusav887i9jfsesfa32yhoo104",
                                 "zua3a0afxtuxrkh3jnnkduwkodv816k1"),
    "max2action": ("jgbch9enrcfvxtwkrqsdbitwvuwnopl0", "922x4qs3feynstjj42muecrlch1o7pmv",
                   "7svgta3kqat1jhe9kp0zuptt3vrvarzw"),
    "max2action_cameramotion": ("yvhx9p5haip5abzh9i2fofssjpq34zwz", "zfau8j1e6n7ylobf0g1d2wjdgdu86j2e",
                                "i9kexj33if00t338esnw93uzm5f6sfar"),
}


def _cater() -> list[Archive]:
    return [Archive(f"{variant}/{what}.zip", f"https://cmu.box.com/shared/static/{key}.zip", f"{variant}/{what}",
                    variant) for variant, keys in _CATER_LINKS.items() for what, key in zip(("videos", "scenes", "lists"), keys)]


MANIFESTS: dict[str, Callable[[], list[Archive]]] = {
    "clevrer": _clevrer,
    "cater": _cater,
    "kinetics600": lambda: [Archive("kinetics600.tar.gz",
                                    "https://storage.googleapis.com/deepmind-media/Datasets/kinetics600.tar.gz",
                                    "annotations", "annotations")],
}
NOTES = {
    "kinetics600": ("Kinetics-600 clips are YouTube videos: only the annotation CSVs can be downloaded here. "
                    "Fetch the clips yourself (e.g. with the ActivityNet crawler) into "
                    "<root>/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4; "
                    "`slotvideo data inspect kinetics600 --root DIR` reports which are missing."),
}


@dataclass
class DownloadReport:
    dataset: str
    root: str
    fetched: list[str]
    skipped: list[str]
    note: str | None = None


def archives_for(dataset: str, parts: Sequence[str] | None = None) -> list[Archive]:
    if dataset not in MANIFESTS:
        raise ConfigError(f"cannot download {dataset!r}; downloadable datasets are {sorted(MANIFESTS)}")
    archives = MANIFESTS[dataset]()
    if parts:
        known = sorted({a.part for a in archives})
        unknown = sorted(set(parts) - set(known))
        if unknown:
            raise ConfigError(f"unknown {dataset} part {unknown[0]!r}; parts are {known}")
        archives = [a for a in archives if a.part in parts]
    return archives


def _local_name(archive: Archive) -> str:
    return archive.name.replace("/", "__")


# --------------------------------------------------------------------------- fetching


def _open(url: str, offset: int, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "slotvideo", **(
        {"Range": f"bytes={offset}-"} if offset else {})})
    return urllib.request.urlopen(request, timeout=timeout)


def fetch(url: str, dest: Path, *, size: int | None = None, retries: int = 5, backoff: float = 1.0,
          timeout: float = 60.0, log: Callable[[str], None] = print) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with HTTP Range after interruptions."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset == size:
            break
        try:
            total = _fetch_once(url, part, offset, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset and (size is None or offset == size):
                break  # nothing left to send: the partial file is the whole file
            raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, OSError) as e:
            failures += 1
            if failures > retries:
                raise DataError(f"download of {url} failed after {retries} retries: {e}; run the command again "
                                f"to resume from {part.stat().st_size if part.exists() else 0} bytes") from None
            log(f"  connection lost ({e}); resuming in {backoff * failures:.0f} s")
            time.sleep(backoff * failures)
            continue
        got = part.stat().st_size
        if size is not None and total is not None and total != size:
            raise DataError(f"{url}: the server sends {total} bytes, but the manifest expects {size}")
        if total is None or got >= total:
            if total is not None and got > total:
                raise DataError(f"{url}: received {got} bytes, more than the {total} announced; delete {part}")
            break
        failures += 1  # the server closed the connection mid-body without an error
        if failures > retries:
            raise DataError(f"download of {url} stopped at {got} of {total} bytes after {retries} retries; "
                            "run the command again to resume")
        log(f"  connection closed at {got}/{total} bytes; resuming")
        time.sleep(backoff * failures)
    os.replace(part, dest)
    return dest


def _fetch_once(url: str, part: Path, offset: int, timeout: float) -> int | None:
    """One request appending to ``part``; returns the full file size when the server says it."""
    with _open(url, offset, timeout) as response:
        status = getattr(response, "status", 200)
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
            if m is None or int(m.group(1)) != offset:
                raise DataError(f"{url}: asked for bytes from {offset}, server sent Content-Range {content_range!r}")
            full = None if m.group(3) == "*" else int(m.group(3))
            mode = "ab"
        else:
            length = response.headers.get("Content-Length")
            full = int(length) if length else None
            mode = "wb"  # a fresh start, or a server that ignores Range
        with open(part, mode) as f:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                f.write(chunk)
    return full


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- unpacking


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"archive {archive} has an unsafe member path {name!r}")


def unpack(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` (zip or tar[.gz]) into ``dest`` via a hidden temporary folder and a rename."""
    tmp = dest.parent / f".{dest.name}.unpack-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _safe_members(zf.namelist(), archive)
                    zf.extractall(tmp)  # each member's CRC-32 is checked as it is read
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as tf:
                    _safe_members(tf.getnames(), archive)
                    if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: also refuses links out
                        tf.extractall(tmp, filter="data")
                    else:
                        tf.extractall(tmp)
            else:
                raise DataError(f"{archive} is neither a zip nor a tar archive (corrupt or truncated download?)")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DataError(f"archive {archive} is corrupt: {e}; it was deleted, run the command again "
                            "to download it anew") from None
        entries = list(tmp.iterdir())
        # Archives that wrap everything in a folder named like the destination unpack one level up.
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name == dest.name else tmp
        if not dest.exists():
            os.replace(source, dest)
        else:  # a destination shared with another archive: move entries in one by one
            for entry in source.iterdir():
                target = dest / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- datasets


def download_dataset(dataset: str, root: str | os.PathLike, *, base_url: str | None = None,
                     parts: Sequence[str] | None = None, archives: Sequence[Archive] | None = None,
                     keep_archives: bool = False, retries: int = 5, backoff: float = 1.0,
                     log: Callable[[str], None] = print) -> DownloadReport:
    """Fetch and unpack ``dataset`` under ``root``; already finished archives are skipped.

    ``archives`` replaces the built-in manifest (tests, private mirrors with checksums).
    """
    root = Path(root).expanduser()
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    todo = list(archives) if archives is not None else archives_for(dataset, parts)
    state = root / ".downloads"
    state.mkdir(parents=True, exist_ok=True)
    note = NOTES.get(dataset)
    if note:
        log(note)
    fetched, skipped = [], []
    for archive in todo:
        marker = state / f"{_local_name(archive)}.done"
        if marker.exists():
            skipped.append(archive.name)
            continue
        url = f"{base_url.rstrip('/')}/{archive.name}" if base_url else archive.url
        local = state / _local_name(archive)
        if local.exists():  # fetched completely by an earlier run that stopped before unpacking
            log(f"{dataset}: {archive.name} already downloaded")
        else:
            log(f"{dataset}: {archive.name} <- {url}")
            fetch(url, local, size=archive.size, retries=retries, backoff=backoff, log=log)
        _verify(archive, local)
        dest = root / archive.dest
        if archive.unpack:
            try:
                unpack(local, dest)
            except DataError:
                local.unlink(missing_ok=True)
                raise
            if not keep_archives:
                local.unlink()
        else:
            dest.mkdir(parents=True, exist_ok=True)
            os.replace(local, dest / PurePosixPath(archive.name).name)
        marker.write_text(json.dumps({"archive": asdict(archive), "url": url, "time": time.time()}))
        fetched.append(archive.name)
    complete = state / f"{dataset}.complete.json"
    all_names = [a.name for a in (archives if archives is not None else archives_for(dataset))]
    if all((state / f"{n.replace('/', '__')}.done").exists() for n in all_names):
        complete.write_text(json.dumps({"dataset": dataset, "archives": all_names, "time": time.time()}))
    return DownloadReport(dataset, str(root), fetched, skipped, note)


def _verify(archive: Archive, path: Path) -> None:
    got = path.stat().st_size
    if archive.size is not None and got != archive.size:
        path.unlink()
        raise DataError(f"{archive.name}: downloaded {got} bytes, expected {archive.size}; deleted, run again")
    if archive.sha256 is not None:
        digest = sha256_of(path)
        if digest != archive.sha256.lower():
            path.unlink()
            raise DataError(f"{archive.name}: SHA-256 {digest} does not match the expected {archive.sha256}; "
                            "deleted, run again")


def is_complete(dataset: str, root: str | os.PathLike) -> bool:
    """Whether a full download of ``dataset`` finished under ``root`` (its final marker exists)."""
    return (Path(root) / ".downloads" / f"{dataset}.complete.json").exists()

"""Training runs and data kept outside git: pack a run folder, and pack face sets for a device machine.

A run folder (resume points, teachers, students) is packed into one `.run.tar.gz` with a
MANIFEST.json (every file's size and sha256, the repository commit) for keeping wherever
large files are kept; `unpack-run` checks every file against the manifest on the way back.

Face sets (NPZ with x, y, classes and any other arrays) are packed for a device machine whose
calls carry at most 64 MiB, the tree included: the faces become lossless PNG mosaics (FER2013's
train + val go from 70.5 MB of NPZ to about 55 MB), split into shards of at most `--shard-mib`
so that each shard can travel in its own call; `unpack-data` rebuilds NPZ files whose arrays
are identical to the originals (checked by sha256).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACK_FORMAT = "moodbox-devpack-1"
RUN_FORMAT = "moodbox-run-1"
MOSAIC_COLUMNS = 256
PIECE_FACES = MOSAIC_COLUMNS * 8  # faces per PNG: fine enough to fill shards evenly


class PackError(ValueError):
    """A pack that cannot be made or read as asked; the message names the file and the fix."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _commit(folder: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


# --- run folders ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PackedRun:
    archive: Path
    files: int
    bytes_in: int
    bytes_out: int


def pack_run(run: Path, out: Path | None = None, force: bool = False) -> PackedRun:
    """Pack every regular file under `run` into `out` (default: <run>.run.tar.gz beside it)."""
    run = Path(run)
    if not run.is_dir():
        raise PackError(f"{run}: not a folder; give the run folder (the --out folder of a training run)")
    out = Path(out) if out else run.parent / f"{run.name}.run.tar.gz"
    if out.exists() and not force:
        raise PackError(f"{out} already exists; choose another --out or add --force to replace it")
    files = sorted(p for p in run.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise PackError(f"{run}: holds no files; nothing to pack")
    if out.resolve().is_relative_to(run.resolve()):
        raise PackError(f"{out} is inside the run folder {run}; write the archive elsewhere")
    manifest = {"format": RUN_FORMAT, "run": run.name, "packed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "commit": _commit(run), "files": [
                    {"path": p.relative_to(run).as_posix(), "bytes": p.stat().st_size,
                     "sha256": sha256_file(p)} for p in files]}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        blob = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(f"{run.name}/MANIFEST.json")
        info.size, info.mtime = len(blob), int(time.time())
        tar.addfile(info, io.BytesIO(blob))
        for p in files:
            tar.add(p, arcname=f"{run.name}/{p.relative_to(run).as_posix()}", recursive=False)
    os.replace(partial, out)
    return PackedRun(out, len(files), sum(f["bytes"] for f in manifest["files"]), out.stat().st_size)


def unpack_run(archive: Path, into: Path) -> Path:
    """Unpack a .run.tar.gz under `into`, checking every file against its manifest."""
    archive, into = Path(archive), Path(into)
    if not archive.is_file():
        raise PackError(f"{archive}: no such archive; give a file written by `moodbox-convert pack-run`")
    try:
        tar = tarfile.open(archive, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise PackError(f"{archive}: not a run archive ({exc}); give a file written by pack-run") from None
    with tar:
        members = tar.getmembers()
        manifests = [m for m in members if m.name.endswith("/MANIFEST.json") and m.name.count("/") == 1]
        if len(manifests) != 1:
            raise PackError(f"{archive}: no MANIFEST.json; it was not written by pack-run")
        manifest = json.loads(tar.extractfile(manifests[0]).read())
        root = manifests[0].name.split("/")[0]
        target = into / root
        if target.exists():
            raise PackError(f"{target} already exists; unpack into another folder (--into)")
        expected = {f"{root}/{f['path']}": f for f in manifest.get("files", [])}
        for m in members:
            if m is manifests[0]:
                continue
            if m.name not in expected or not m.isfile():
                raise PackError(f"{archive}: unexpected entry {m.name!r}; the archive was altered")
        for name, entry in expected.items():
            data = tar.extractfile(name)
            if data is None:
                raise PackError(f"{archive}: {name} is missing; the archive is incomplete")
            dest = into / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "xb") as f:
                digest = hashlib.sha256()
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
                    f.write(block)
            if digest.hexdigest() != entry["sha256"]:
                raise PackError(f"{name}: checksum differs from the manifest; the archive is damaged")
    return target


def tracked_tree_bytes(folder: Path) -> int | None:
    """Bytes of the files git tracks in the checkout holding `folder` (None outside one)."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "ls-files", "-z"], capture_output=True,
                             timeout=30)
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode or top.returncode:
        return None
    root = Path(top.stdout.strip())
    return sum((root / n).stat().st_size for n in out.stdout.decode().split("\0")
               if n and (root / n).is_file())


# --- face sets for a device machine ---------------------------------------------------------
def _mosaic(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    rows = -(-n // MOSAIC_COLUMNS)
    grid = np.zeros((rows * MOSAIC_COLUMNS, h, w), np.uint8)
    grid[:n] = x
    return grid.reshape(rows, MOSAIC_COLUMNS, h, w).transpose(0, 2, 1, 3).reshape(rows * h, MOSAIC_COLUMNS * w)


def _unmosaic(image: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    rows = image.shape[0] // h
    tiles = image.reshape(rows, h, MOSAIC_COLUMNS, w).transpose(0, 2, 1, 3).reshape(-1, h, w)
    return np.ascontiguousarray(tiles[:n])


def _array_digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise PackError(f"{path}: no such file; give FER2013-style NPZ files (x, y, classes)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise PackError(f"{path}: not a readable NPZ ({exc})") from None
    x = arrays.get("x")
    if x is not None and (x.dtype != np.uint8 or x.ndim != 3):
        raise PackError(f"{path}: its array x is not uint8 faces (N, H, W); pack face sets "
                        "(x, y, classes) or files without x (labels, votes), which travel as they are")
    return arrays


def pack_data(npzs: list[Path], out: Path, shard_mib: float = 48.0) -> list[Path]:
    """Write `out`/shard-K.npz files, each at most `shard_mib` MiB, holding PNG mosaics of faces."""
    import cv2

    out = Path(out)
    limit = int(shard_mib * 1024 * 1024)
    pieces: list[tuple[str, int, bytes]] = []   # (set name, first row, PNG bytes)
    sets: dict[str, dict] = {}
    for path in map(Path, npzs):
        arrays = _load_arrays(path)
        has_x = "x" in arrays
        x = arrays.pop("x", np.zeros((0, 0, 0), np.uint8))
        name = path.stem
        if name in sets:
            raise PackError(f"{path}: two sets are named {name!r}; rename one file")
        sets[name] = {"n": int(x.shape[0]), "h": int(x.shape[1]), "w": int(x.shape[2]),
                      "has_x": has_x,
                      "sha256": _array_digest({"x": x, **arrays}),
                      "others": {k: v for k, v in arrays.items()}}
        for first in range(0, x.shape[0], PIECE_FACES):
            ok, png = cv2.imencode(".png", _mosaic(x[first:first + PIECE_FACES]),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 9])
            if not ok:
                raise PackError(f"{path}: OpenCV could not encode faces {first}.. as PNG")
            if len(png) > limit:
                raise PackError(f"{path}: {PIECE_FACES} faces take {len(png) / 2**20:.1f} MiB as PNG, "
                                f"more than a {shard_mib:g} MiB shard; raise --shard-mib")
            pieces.append((name, first, png.tobytes()))
    if out.exists() and any(out.iterdir()):
        raise PackError(f"{out} is not empty; give a new folder for the pack")
    out.mkdir(parents=True, exist_ok=True)
    shards: list[list[tuple[str, int, bytes]]] = [[]]
    size = 0
    for piece in pieces:
        if shards[-1] and size + len(piece[2]) > limit:
            shards.append([])
            size = 0
        shards[-1].append(piece)
        size += len(piece[2])
    written = []
    for k, shard in enumerate(shards, 1):
        arrays: dict[str, np.ndarray] = {}
        index = []
        for j, (name, first, png) in enumerate(shard):
            arrays[f"png{j}"] = np.frombuffer(png, np.uint8)
            index.append({"set": name, "first": first, "key": f"png{j}"})
        if k == 1:  # labels and other small arrays travel once, in the first shard
            for name, info in sets.items():
                for key, value in info["others"].items():
                    arrays[f"{name}.{key}"] = value
        meta = {"format": PACK_FORMAT, "shard": k, "shards": len(shards), "pieces": index,
                "sets": {n: {kk: vv for kk, vv in i.items() if kk != "others"} | {
                    "others": sorted(i["others"])} for n, i in sets.items()}}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        path = out / f"shard-{k}.npz"
        np.savez(path, **arrays)
        written.append(path)
    return written


def unpack_data(shard_paths: list[Path], into: Path) -> list[Path]:
    """Rebuild the NPZ face sets from all shards of a pack; refuses an incomplete pack."""
    import cv2

    metas, loaded = [], []
    for path in map(Path, shard_paths):
        if not path.is_file():
            raise PackError(f"{path}: no such shard; give every shard-K.npz of the pack")
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if "meta" not in arrays:
            raise PackError(f"{path}: not a shard written by `moodbox-convert pack-data`")
        meta = json.loads(arrays["meta"].tobytes())
        if meta.get("format") != PACK_FORMAT:
            raise PackError(f"{path}: unknown pack format {meta.get('format')!r}")
        metas.append(meta)
        loaded.append(arrays)
    total = metas[0]["shards"] if metas else 0
    have = sorted(m["shard"] for m in metas)
    if have != list(range(1, total + 1)):
        missing = sorted(set(range(1, total + 1)) - set(have))
        raise PackError(f"the pack has {total} shards; missing shard(s) {missing or have}: "
                        "give all of them in one call")
    sets = next(m["sets"] for m in metas if m["shard"] == 1)
    first_arrays = loaded[[m["shard"] for m in metas].index(1)]
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    written = []
    for name, info in sets.items():
        x = np.zeros((info["n"], info["h"], info["w"]), np.uint8)
        for meta, arrays in zip(metas, loaded):
            for piece in meta["pieces"]:
                if piece["set"] != name:
                    continue
                image = cv2.imdecode(arrays[piece["key"]], cv2.IMREAD_GRAYSCALE)
                n = min(PIECE_FACES, info["n"] - piece["first"])
                x[piece["first"]:piece["first"] + n] = _unmosaic(image, n, info["h"], info["w"])
        others = {key: first_arrays[f"{name}.{key}"] for key in info["others"]}
        if _array_digest({"x": x, **others}) != info["sha256"]:
            raise PackError(f"{name}: the rebuilt arrays differ from the packed ones; the pack is damaged")
        path = into / f"{name}.npz"
        np.savez_compressed(path, **({"x": x} if info["has_x"] else {}), **others)
        written.append(path)
    return written

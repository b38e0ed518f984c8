"""moodbox-convert pack-run / unpack-run and pack-data / unpack-data: run leftovers and face
sets leave and come back whole, and every misuse is one clear line."""
from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from moodbox.converter.cli import main as convert_cli
from moodbox.converter.data import synthetic_faces


@pytest.fixture()
def run_folder(tmp_path):
    run = tmp_path / "runs" / "distill"
    (run / "eval").mkdir(parents=True)
    (run / "teacher.ckpt.npz").write_bytes(np.random.default_rng(1).bytes(300_000))
    (run / "eval" / "student-int8.json").write_text('{"accuracy": 0.7}')
    return run


def test_a_run_packs_and_comes_back_identical(run_folder, tmp_path, capsys):
    archive = tmp_path / "keep" / "distill.run.tar.gz"
    assert convert_cli(["pack-run", str(run_folder), "--out", str(archive)]) == 0
    assert "packed 2 files" in capsys.readouterr().out
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("distill/MANIFEST.json").read())
    assert {f["path"] for f in manifest["files"]} == {"teacher.ckpt.npz", "eval/student-int8.json"}
    assert convert_cli(["unpack-run", str(archive), "--into", str(tmp_path / "back")]) == 0
    for name in ("teacher.ckpt.npz", "eval/student-int8.json"):
        assert (tmp_path / "back" / "distill" / name).read_bytes() == (run_folder / name).read_bytes()
    # unpacking again over what is there refuses instead of overwriting
    assert convert_cli(["unpack-run", str(archive), "--into", str(tmp_path / "back")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_pack_run_refuses_what_it_cannot_do(run_folder, tmp_path, capsys):
    assert convert_cli(["pack-run", str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    archive = tmp_path / "a.run.tar.gz"
    archive.write_bytes(b"mine")
    assert convert_cli(["pack-run", str(run_folder), "--out", str(archive)]) == 2
    assert "already exists" in capsys.readouterr().err and archive.read_bytes() == b"mine"
    assert convert_cli(["pack-run", str(run_folder), "--out", str(run_folder / "x.tar.gz")]) == 2
    assert "inside the run folder" in capsys.readouterr().err


def test_a_damaged_run_archive_is_refused(run_folder, tmp_path, capsys):
    archive = tmp_path / "a.run.tar.gz"
    assert convert_cli(["pack-run", str(run_folder), "--out", str(archive)]) == 0
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members["distill/teacher.ckpt.npz"] = b"altered"
    bad = tmp_path / "bad.run.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, __import__("io").BytesIO(blob))
    capsys.readouterr()
    assert convert_cli(["unpack-run", str(bad), "--into", str(tmp_path / "out")]) == 2
    assert "checksum differs" in capsys.readouterr().err
    assert convert_cli(["unpack-run", str(tmp_path / "none.tar.gz")]) == 2


def test_face_sets_travel_in_shards_and_are_rebuilt_exactly(tmp_path, capsys):
    faces = synthetic_faces(2500, seed=3)
    extra = np.arange(2500, dtype=np.int32)
    np.savez(tmp_path / "train.npz", x=faces.x, y=faces.y, classes=np.array(faces.classes),
             source_row=extra)
    votes = np.random.default_rng(2).integers(0, 10, (2500, 10)).astype(np.uint8)
    np.savez(tmp_path / "votes.npz", votes=votes)  # a file without faces travels as it is
    out = tmp_path / "pack"
    assert convert_cli(["pack-data", str(tmp_path / "train.npz"), str(tmp_path / "votes.npz"),
                        "--out", str(out), "--shard-mib", "4"]) == 0
    shards = sorted(out.glob("shard-*.npz"))
    assert len(shards) == 2 and all(p.stat().st_size < 4.1 * 2**20 for p in shards)
    capsys.readouterr()
    # every shard is needed
    assert convert_cli(["unpack-data", str(shards[0]), "--into", str(tmp_path / "x")]) == 2
    assert "missing shard" in capsys.readouterr().err
    assert convert_cli(["unpack-data", *map(str, shards), "--into", str(tmp_path / "back")]) == 0
    with np.load(tmp_path / "back" / "train.npz") as back, np.load(tmp_path / "train.npz") as orig:
        assert sorted(back.files) == sorted(orig.files)
        for key in orig.files:
            assert back[key].dtype == orig[key].dtype and np.array_equal(back[key], orig[key])
    with np.load(tmp_path / "back" / "votes.npz") as back:
        assert back.files == ["votes"] and np.array_equal(back["votes"], votes)


def test_pack_data_refuses_bad_input(tmp_path, capsys):
    np.savez(tmp_path / "float.npz", x=np.zeros((3, 48, 48), np.float32))
    assert convert_cli(["pack-data", str(tmp_path / "float.npz"), "--out", str(tmp_path / "p")]) == 2
    assert "not uint8 faces" in capsys.readouterr().err
    assert convert_cli(["pack-data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "p")]) == 2
    assert "no such file" in capsys.readouterr().err
    faces = synthetic_faces(2100, seed=4)
    np.savez(tmp_path / "t.npz", x=faces.x, y=faces.y)
    assert convert_cli(["pack-data", str(tmp_path / "t.npz"), "--out", str(tmp_path / "p"),
                        "--shard-mib", "0.1"]) == 2
    assert "raise --shard-mib" in capsys.readouterr().err

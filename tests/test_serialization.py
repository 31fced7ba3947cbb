"""save / load: round trips, atomic writes, and hostile or broken files."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import convlab
from convlab import nn


def test_round_trip_of_nested_state_cpu(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    obj = {
        "model": model.state_dict(),
        "epoch": 7,
        "best": float("nan"),
        "lr": 1e-3,
        "name": "chart-cnn",
        "flags": [True, None, (1, 2.5)],
        3: "int key",
        "array": np.arange(4, dtype=np.int32),
    }
    path = tmp_path / "ckpt"  # no extension: kept as given
    convlab.save(obj, path)
    assert os.path.exists(path) and not os.path.exists(str(path) + ".npz")
    back = convlab.load(path)
    assert back["epoch"] == 7 and back["name"] == "chart-cnn" and back[3] == "int key"
    assert np.isnan(back["best"]) and back["lr"] == 1e-3
    assert back["flags"] == [True, None, (1, 2.5)]
    np.testing.assert_array_equal(back["array"], np.arange(4))
    assert list(back["model"]) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert back["model"][k].dtype == v.dtype
        np.testing.assert_array_equal(back["model"][k].numpy(), v.numpy())
    model.load_state_dict(back["model"])


def test_unsupported_objects_are_refused_cpu(tmp_path):
    with pytest.raises(TypeError, match="cannot save objects of type"):
        convlab.save({"f": lambda: 0}, tmp_path / "x")
    with pytest.raises(TypeError, match="dtype object"):
        convlab.save(np.array([object()]), tmp_path / "x")
    assert not any(tmp_path.iterdir()), "a failed save left a file behind"


def test_failed_save_keeps_the_previous_checkpoint_cpu(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    convlab.save({"w": convlab.ones(3)}, path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        convlab.save({"w": convlab.zeros(3)}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


def test_truncated_file_is_a_clear_error_cpu(tmp_path):
    path = tmp_path / "model.ckpt"
    convlab.save({"w": convlab.randn(100, 100)}, path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(convlab.CheckpointError, match="not a valid convlab checkpoint"):
            convlab.load(path)


def test_pickle_payload_never_runs_cpu(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(
            f,
            a0=np.array([Exploit()], dtype=object),
            __convlab__=np.frombuffer(
                json.dumps(
                    {"format": "convlab-checkpoint", "version": 1, "object": {"array": "a0"}}
                ).encode(),
                np.uint8,
            ),
        )
    with pytest.raises(convlab.CheckpointError):
        convlab.load(path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(convlab.CheckpointError):
        convlab.load(raw)
    assert not marker.exists()


@pytest.mark.parametrize(
    "meta",
    [
        b"not json",
        json.dumps({"format": "other"}).encode(),
        json.dumps({"format": "convlab-checkpoint", "version": 99, "object": None}).encode(),
        json.dumps(
            {"format": "convlab-checkpoint", "version": 1, "object": {"tensor": "a7"}}
        ).encode(),
        json.dumps(
            {
                "format": "convlab-checkpoint",
                "version": 1,
                "object": {"dict": [[{"list": []}, None]]},
            }
        ).encode(),
        json.dumps(
            {"format": "convlab-checkpoint", "version": 1, "object": {"exec": "print(1)"}}
        ).encode(),
    ],
    ids=["garbage", "foreign", "version", "missing-array", "unhashable-key", "unknown-type"],
)
def test_crafted_metadata_is_rejected_cpu(tmp_path, meta):
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.savez(f, __convlab__=np.frombuffer(meta, np.uint8))
    with pytest.raises(convlab.CheckpointError):
        convlab.load(path)


def test_other_files_are_rejected_cpu(tmp_path):
    plain = tmp_path / "plain.npy"
    np.save(plain, np.ones(3))
    with pytest.raises(convlab.CheckpointError, match="single array"):
        convlab.load(plain)
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(convlab.CheckpointError):
        convlab.load(zipped)
    with pytest.raises(FileNotFoundError):
        convlab.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="map_location"):
        convlab.load(plain, map_location="tpu")


def test_load_accepts_pytorchs_arguments(tmp_path):
    import convlab

    model = convlab.nn.Linear(3, 2)
    path = tmp_path / "model.pt"
    convlab.save(model.state_dict(), path)
    for kwargs in (
        {"weights_only": True},
        {"map_location": convlab.device("cpu")},
        {"map_location": {"cuda:0": "cpu"}},
        {"map_location": lambda storage, location: storage},
        {"map_location": "cpu", "weights_only": False, "mmap": False},
    ):
        state = convlab.load(path, **kwargs)
        fresh = convlab.nn.Linear(3, 2)
        fresh.load_state_dict(state)
        np.testing.assert_array_equal(fresh.weight.numpy(), model.weight.numpy())
    with pytest.raises(ValueError, match="one device"):
        convlab.load(path, map_location={"cuda:0": "cpu", "cuda:1": "gpu"})


def test_saving_a_whole_module_names_the_alternative(tmp_path):
    import convlab

    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        convlab.save(convlab.nn.Linear(2, 2), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_save_and_load_through_binary_streams(tmp_path):
    """As torch.save / torch.load: a BytesIO (the usual way to copy a model's state in
    memory) and an open file work as well as a path; a stream is read from its position."""
    import io

    state = {"w": convlab.arange(6.0).reshape(2, 3), "step": 3, "names": ["a", "b"]}
    buffer = io.BytesIO()
    convlab.save(state, buffer)
    buffer.seek(0)
    back = convlab.load(buffer)
    np.testing.assert_array_equal(back["w"].numpy(), state["w"].numpy())
    assert back["step"] == 3 and back["names"] == ["a", "b"]

    path = tmp_path / "model.pt"
    with open(path, "wb") as handle:
        handle.write(b"junk")  # written at the stream's position: the checkpoint follows
        convlab.save(state, handle)
    with open(path, "rb") as handle:
        assert handle.read(4) == b"junk"
        np.testing.assert_array_equal(convlab.load(handle)["w"].numpy(), state["w"].numpy())
    # a checkpoint written by path reads back through a stream, and the other way round
    convlab.save(state, tmp_path / "by_path.pt")
    with open(tmp_path / "by_path.pt", "rb") as handle:
        assert convlab.load(handle)["step"] == 3

    with pytest.raises(convlab.CheckpointError, match="<stream>"):
        convlab.load(io.BytesIO(b"not a checkpoint"))
    with open(tmp_path / "text.txt", "w") as text, pytest.raises(TypeError, match="readable"):
        convlab.load(text)
    with pytest.raises(TypeError, match="binary stream"):
        convlab.load(io.StringIO("text"))

"""Checkpoints: safetensors weights, safe training state, manifests, fallback, the stage lock (maskgan.checkpoint)."""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from maskgan.checkpoint import (StageLock, clean_leftovers, find_checkpoint, latest_checkpoint, load_state,
                                load_weights, rng_state, save_checkpoint, set_rng_state)
from maskgan.errors import CheckpointError, RunLocked


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.InstanceNorm2d(4, affine=True))


def _three(tmp_path, keep=3):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"g": _net(step)}, {}, {"config": {}}, keep=keep)


def test_weights_round_trip_bitwise(tmp_path):
    a, b = _net(0), _net(1)
    path = save_checkpoint(tmp_path, 5, {"g": a}, {}, {"cfg": 1})
    load_weights(b, path / "g.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_latest_points_at_the_newest_and_old_ones_are_pruned(tmp_path):
    _three(tmp_path, keep=2)
    assert latest_checkpoint(tmp_path).name == "step_0000003"
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_0000002", "step_0000003"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))


def test_no_checkpoint_gives_none(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_every_file_is_recorded_in_the_manifest_with_its_sha256_and_size(tmp_path):
    path = save_checkpoint(tmp_path, 4, {"g": _net()}, {"x": 1}, {"config": {}})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["step"] == 4
    assert set(manifest["files"]) == {"g.safetensors", "config.json", "state.pt"}
    assert manifest["files"]["state.pt"]["size"] == (path / "state.pt").stat().st_size
    assert len(manifest["files"]["g.safetensors"]["sha256"]) == 64


def test_state_with_optimizer_loads_with_weights_only(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(1, 3, 5, 5)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path, 7, {"g": net}, {"optimizers": {"g": opt.state_dict()}}, {})
    state = load_state(path / "state.pt")
    assert state["step"] == 7
    fresh = torch.optim.Adam(_net().parameters())
    fresh.load_state_dict(state["optimizers"]["g"])
    assert fresh.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


class Payload:  # an arbitrary object: pickling it would let a file run code on load
    pass


def test_a_state_file_carrying_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"step": 1, "evil": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_state(path)


@pytest.mark.parametrize("damage", ["zeroed", "truncated"])
def test_a_damaged_state_file_is_named_without_torch_advice(tmp_path, damage):
    path = save_checkpoint(tmp_path, 1, {"g": _net()}, {}, {}) / "state.pt"
    data = path.read_bytes()
    path.write_bytes(b"\0" * len(data) if damage == "zeroed" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"state\.pt is damaged") as err:
        load_state(path)
    assert str(path) in str(err.value) and "weights_only" not in str(err.value)


@pytest.mark.parametrize("damage", ["zeroed", "truncated"])
def test_a_damaged_weights_file_is_named(tmp_path, damage):
    path = save_checkpoint(tmp_path, 1, {"g": _net()}, {}, {}) / "g.safetensors"
    data = path.read_bytes()
    path.write_bytes(b"\0" * len(data) if damage == "zeroed" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"g\.safetensors is damaged"):
        load_weights(_net(), path)


def test_rng_states_restore_python_numpy_and_torch(tmp_path):
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    saved = rng_state()
    torch.save(saved, tmp_path / "rng.pt")
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_weights_of_another_architecture_are_refused_with_the_file_name(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"g": _net()}, {}, {})
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    with pytest.raises(CheckpointError, match="g.safetensors does not fit Sequential"):
        load_weights(other, path / "g.safetensors")


def test_garbled_bytes_inside_the_newest_weights_fall_back_to_the_older_checkpoint(tmp_path):
    _three(tmp_path)
    path = tmp_path / "checkpoints" / "step_0000003" / "g.safetensors"
    data = bytearray(path.read_bytes())
    data[-20:-10] = b"\x7f" * 10  # inside the tensor data: safetensors alone would load it silently
    path.write_bytes(bytes(data))
    lines = []
    ckpt = find_checkpoint(tmp_path, report=lines.append)
    assert ckpt.step == 2
    assert len(lines) == 1 and "step_0000003" in lines[0] and "sha256" in lines[0] and "step_0000002" in lines[0]


def test_a_missing_latest_json_uses_the_newest_folder_and_says_so(tmp_path):
    _three(tmp_path)
    (tmp_path / "checkpoints" / "latest.json").unlink()
    lines = []
    assert find_checkpoint(tmp_path, report=lines.append).step == 3
    assert "missing" in lines[0]


def test_a_dangling_latest_pointer_falls_back_to_the_folders(tmp_path):
    _three(tmp_path)
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 9, "path": "step_0000009"}))
    lines = []
    assert find_checkpoint(tmp_path, report=lines.append).step == 3
    assert "does not exist" in lines[0]


def test_a_latest_pointer_without_any_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 3, "path": "step_0000003"}))
    with pytest.raises(CheckpointError, match="holds none"):
        latest_checkpoint(tmp_path)


def test_when_every_checkpoint_is_damaged_the_error_lists_them(tmp_path):
    _three(tmp_path)
    for p in (tmp_path / "checkpoints").glob("step_*/state.pt"):
        p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="every checkpoint.*is damaged"):
        find_checkpoint(tmp_path, report=None)


def test_config_files_edited_by_hand_are_not_called_damaged_weights(tmp_path):
    _three(tmp_path)
    for p in (tmp_path / "checkpoints").glob("step_*/config.json"):
        p.write_text(json.dumps({"config": {"preset": "cpu"}}))  # "edited to another preset"
    with pytest.raises(CheckpointError) as e:
        find_checkpoint(tmp_path, report=None)
    message = str(e.value)
    assert "the config.json of every checkpoint" in message and "was changed after it was written; every weights " \
        "file is intact" in message and "put the original config.json files back" in message
    assert "damaged" not in message and "Delete" not in message  # before: "every checkpoint ... is damaged ... Delete"


def test_leftovers_of_killed_writes_are_cleaned_up(tmp_path):
    _three(tmp_path)
    root = tmp_path / "checkpoints"
    (root / ".tmp_step_0000004_abc").mkdir()
    (root / ".tmp_step_0000004_abc" / "g.safetensors").write_bytes(b"half")
    (root / ".latest.json.x1.tmp").write_text("{")
    (tmp_path / ".log.jsonl.y2.tmp").write_text("")
    removed = clean_leftovers(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step_0000001", "step_0000002", "step_0000003"]


def test_a_second_holder_of_the_stage_lock_fails_fast_with_the_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "since": "now"}))
        with pytest.raises(RunLocked, match=rf"process {holder.pid}.*delete .*\.lock"):
            StageLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "since": "then"}))
    lines = []
    with StageLock(tmp_path, report=lines.append):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert "stale lock" in lines[0] and str(dead.pid) in lines[0]
    assert not (tmp_path / ".lock").exists()

"""Checkpoints: safetensors weights, safe training state, atomic folders (maskgan.train.checkpoint)."""
import json
import random

import numpy as np
import pytest
import torch

from maskgan.train.checkpoint import (CheckpointError, latest_checkpoint, load_state, load_weights, rng_state,
                                      save_checkpoint, set_rng_state)


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.InstanceNorm2d(4, affine=True))


def test_weights_round_trip_bitwise(tmp_path):
    a, b = _net(0), _net(1)
    path = save_checkpoint(tmp_path, 5, {"g": a}, {}, {"cfg": 1})
    load_weights(b, path / "g.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_latest_points_at_the_newest_and_old_ones_are_pruned(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"g": _net()}, {}, {}, keep=2)
    assert latest_checkpoint(tmp_path).name == "step_0000003"
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert kept == ["step_0000002", "step_0000003"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))


def test_no_checkpoint_gives_none(tmp_path):
    assert latest_checkpoint(tmp_path) is None


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


def test_dangling_latest_pointer_is_reported(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"step": 3, "path": "step_0000003"}))
    with pytest.raises(CheckpointError, match="does not exist"):
        latest_checkpoint(tmp_path)

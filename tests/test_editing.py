"""The Editor's inputs and loading (maskgan.editing): numpy or torch, checked, with errors naming the argument."""
import numpy as np
import pytest
import torch

from maskgan.checkpoint import save_checkpoint
from maskgan.config import Config
from maskgan.editing import Editor
from maskgan.errors import ConfigError, DataError
from maskgan.nn import build_dmn, build_maskvae
from maskgan.widgets import run_status


@pytest.fixture
def run_dir(tmp_path):
    cfg = Config.preset("smoke")
    torch.manual_seed(0)
    record = {"stage": "dmn", "config": cfg.to_dict()}
    for step in (1, 2):
        save_checkpoint(tmp_path / "dmn", step, {"dmn": build_dmn(cfg)}, {}, record, keep=3)
    save_checkpoint(tmp_path / "vae", 1, {"maskvae": build_maskvae(cfg)}, {}, {"stage": "vae", "config": cfg.to_dict()})
    return tmp_path


@pytest.fixture
def editor(run_dir):
    return Editor.from_run(run_dir)


def _face(size=32):
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, size, size, generator=g) * 2 - 1, torch.randint(0, 19, (size, size), generator=g)


def test_numpy_inputs_give_the_same_face_as_torch_inputs(editor):
    image, label = _face()
    a = editor.render(label, editor.style(image, label))
    uint8 = ((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    b = editor.render(label.numpy().astype(np.uint8), editor.style(uint8, label.numpy()))
    assert a.shape == b.shape == (3, 32, 32)
    assert (a - b).abs().max() < 0.05  # the uint8 image differs from the float one by rounding only


def test_an_image_in_0_255_is_refused_with_the_argument_name(editor):
    image, label = _face()
    with pytest.raises(DataError, match=r"image has values in \[.*\]; the kit's images are in \[-1, 1\]"):
        editor.style((image + 1) * 127.5, label)


def test_an_image_with_nan_is_refused(editor):
    image, label = _face()
    image[0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="image contains NaN"):
        editor.style(image, label)


def test_a_label_outside_the_classes_is_refused(editor):
    image, label = _face()
    label[0, 0] = 23
    with pytest.raises(DataError, match=r"label has label values \[23\]; CelebAMask-HQ labels are 0..18"):
        editor.render(label, editor.style(*_face()))


def test_an_image_and_a_mask_of_different_sizes_are_refused(editor):
    image, _ = _face(32)
    _, label = _face(16)
    with pytest.raises(DataError, match="image is 32x32 but its label is 16x16"):
        editor.style(image, label)


def test_the_maskvae_is_not_a_generator_stage_and_says_so(run_dir):
    with pytest.raises(ConfigError, match=r"stage 'vae' \(MaskVAE\) renders no faces.*generator stages are"):
        Editor.from_run(run_dir, stage="vae")


def test_a_damaged_newest_checkpoint_falls_back_and_the_app_check_says_so(run_dir, capsys):
    newest = run_dir / "dmn" / "checkpoints" / "step_0000002" / "dmn.safetensors"
    newest.write_bytes(newest.read_bytes()[:-4] + b"\x01\x02\x03\x04")
    editor = Editor.from_run(run_dir)
    assert "step 1" in editor.source and "skipping checkpoint" in capsys.readouterr().out
    ready, message = run_status(run_dir)
    assert ready and "skipping checkpoint" in message


def test_the_app_check_is_not_ready_when_no_weights_load(run_dir):
    for p in (run_dir / "dmn" / "checkpoints").glob("step_*/dmn.safetensors"):
        p.write_bytes(b"not a safetensors file")
    ready, message = run_status(run_dir)
    assert not ready and "damaged" in message and "make demo" in message

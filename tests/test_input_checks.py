"""Nonsense given to the editing API is refused with the kit's error, naming the argument (issue 22,
weak items): a NaN ``t``, a non-finite style, an empty batch, a brush radius given as text, a face
index the app does not have, a crop box outside the photo, ``margin=nan``, and a device this machine
lacks."""
import math

import numpy as np
import pytest
import torch

from maskgan.brush import paint_stroke
from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.editing import Editor
from maskgan.errors import ConfigError, DataError, MaskGANError, NoSuchFace
from maskgan.nn import build_dmn, build_maskvae
from maskgan.photo import prepare_photo, square_box
from maskgan.widgets.faces import FaceBank


@pytest.fixture(scope="module")
def cfg():
    return Config.preset("smoke")


@pytest.fixture(scope="module")
def editor(cfg):
    torch.manual_seed(0)
    ed = Editor(build_dmn(cfg), build_maskvae(cfg))
    ed.cfg = cfg
    return ed


@pytest.fixture(scope="module")
def face(cfg):
    item = build_dataset(cfg.data, "val")[0]
    return item["image"], item["label"]


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf, "0.5", None, torch.tensor([0.5, math.nan])])
def test_interpolate_refuses_a_t_that_is_not_a_finite_number(editor, face, t):
    _, label = face
    with pytest.raises(ConfigError, match="t must be"):
        editor.interpolate(label, label, t)  # before: t=nan returned a mask, silently


def test_interpolate_takes_any_finite_t_including_extrapolation(editor, face):
    _, label = face
    for t in (0, 0.4, -0.4, 2, np.float32(1.5)):
        assert editor.interpolate(label, label, t).shape == label.shape


def test_render_refuses_a_non_finite_style(editor, face):
    image, label = face
    style = editor.style(image, label)
    with pytest.raises(DataError, match="style has NaN or infinite values"):
        editor.render(label, style * math.nan)  # before: a NaN image, silently
    with pytest.raises(DataError, match=r"style has shape \(3, .*\); expected \(1, D\) or \(1, D\)"):
        editor.render(label, style.expand(3, -1))
    with pytest.raises(DataError, match="style must be the float tensor that Editor.style"):
        editor.render(label, style.numpy())


@pytest.mark.parametrize("call", ["style", "render", "interpolate"])
def test_an_empty_batch_is_refused_with_its_shape(editor, face, call):
    image, label = face
    empty_image, empty_label = image[None][:0], label[None][:0]
    with pytest.raises(DataError, match=r"is empty \(shape \(0, "):  # before: min(): Expected reduction dim
        if call == "style":
            editor.style(empty_image, empty_label)
        elif call == "render":
            editor.render(empty_label, editor.style(image, label))
        else:
            editor.interpolate(empty_label, label, 0.5)


def test_a_brush_radius_given_as_text_is_refused_naming_it(face):
    _, label = face
    with pytest.raises(DataError, match="brush radius must be a number >= 0 .*got '3'"):
        paint_stroke(label, [(4, 4)], "hair", radius="3")  # before: numpy TypeError
    assert paint_stroke(label, [(4, 4)], "hair", radius=np.int64(3))[4, 4] == 13


def test_a_face_index_the_bank_lacks_is_an_error_not_the_last_face(cfg, editor):
    from maskgan.widgets import InterpolationController, MaskEditorController, StyleCopyController
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=4)
    for make in (lambda: StyleCopyController(editor, bank, threaded=False, reference=99),
                 lambda: InterpolationController(editor, bank, threaded=False, face_b=99),
                 lambda: MaskEditorController(editor, bank, threaded=False, donor=99)):
        with pytest.raises(NoSuchFace, match=r"face index 99 is out of range; this bank has faces 0\.\.3"):
            make()  # before: the last face, silently
    with pytest.raises(NoSuchFace, match="no face named 'nobody'"):
        bank.index("nobody")


def test_the_default_second_face_still_works_with_a_one_face_bank(cfg, editor):
    from maskgan.widgets import StyleCopyController
    one = FaceBank(build_dataset(cfg.data, "val"), max_faces=1)
    assert StyleCopyController(editor, one, threaded=False).reference.value == 0  # reference=1, the default


def test_a_crop_box_outside_the_photo_is_refused_not_replaced_by_the_whole_photo():
    photo = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(DataError, match=r"crop box \(500, 500, 600, 600\) lies outside the 64x64 photo"):
        prepare_photo(photo, object(), 32, box=(500, 500, 600, 600))  # before: the whole photo, silently
    with pytest.raises(DataError, match="has a value that is not a finite number"):
        square_box((0, 0, math.nan, 10), 64, 64)
    assert square_box((60, 60, 70, 70), 64, 64, margin=0.0) == (54, 54, 64, 64)  # overlapping: moved inside


@pytest.mark.parametrize("margin", [math.nan, -0.1, "0.4", math.inf])
def test_a_margin_that_is_not_a_number_at_least_0_is_named(margin):
    with pytest.raises(DataError, match="margin must be a number >= 0"):  # before: nan gave a raw ValueError
        square_box((10, 10, 20, 20), 64, 64, margin=margin)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_a_config_error(cfg, tmp_path, capsys):
    from maskgan.__main__ import main
    from maskgan.checkpoint import save_checkpoint
    with pytest.raises(ConfigError, match="CUDA is not available on this machine; use --device cpu"):
        Editor(build_dmn(cfg), device="cuda")  # before: AssertionError: Torch not compiled with CUDA enabled
    save_checkpoint(tmp_path / "dmn", 1, {"dmn": build_dmn(cfg)}, {}, {"stage": "dmn", "config": cfg.to_dict()})
    with pytest.raises(MaskGANError, match="CUDA is not available"):
        Editor.from_run(tmp_path, device="cuda")
    assert main(["bench", "--device", "cuda", "--only", "load"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err

"""Interactive editing widgets, headless (issue 7): pure mask edits, the render queue, and the three
panels driven from Python exactly as the browser drives them (widget values, canvas events)."""
import io
import threading

import numpy as np
import pytest
import torch
from model_fixtures import spread_editor
from PIL import Image

from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.editing import Editor
from maskgan.labels import CLASS_IDS, NUM_CLASSES
from maskgan.nn import build_dmn
from maskgan.widgets import (ONE_CLICK_EDITS, PNG_SIGNATURE, FaceBank, LatestOnly, app_page, close_mouth,
                             ebst_marks, editing_app, frame_png, interpolation_widget, mask_editor, paint_stroke,
                             remove_glasses, run_status, stroke_mask, style_copy_widget, swap_hair)

HAIR, SKIN, MOUTH, U_LIP, L_LIP = (CLASS_IDS[n] for n in ("hair", "skin", "mouth", "u_lip", "l_lip"))


# --- fixtures: tiny untrained smoke models --------------------------------------------------------



pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cfg():
    return Config.preset("smoke")


@pytest.fixture(scope="module")
def bank(cfg):
    return FaceBank(build_dataset(cfg.data, "val"), max_faces=6)


@pytest.fixture()
def editor(cfg):
    return spread_editor(cfg)


def _png(data: bytes) -> np.ndarray:
    assert data[:8] == PNG_SIGNATURE
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _blank(h=16, w=16, cls=0):
    return np.full((h, w), cls, dtype=np.uint8)


# --- pure stroke logic ------------------------------------------------------------------------

def test_a_zero_radius_stroke_on_a_pixel_centre_paints_exactly_that_pixel():
    out = paint_stroke(_blank(), [(3, 4)], "hair", 0)
    assert np.argwhere(out != 0).tolist() == [[4, 3]]  # (x=3, y=4) is row 4, column 3
    assert out[4, 3] == HAIR


def test_a_stroke_joins_consecutive_points_without_gaps():
    out = paint_stroke(_blank(), [(2, 5), (12, 5)], SKIN, 0)
    expected = _blank()
    expected[5, 2:13] = SKIN
    np.testing.assert_array_equal(out, expected)


def test_the_brush_radius_paints_a_disk_of_pixel_centres():
    covered = stroke_mask((16, 16), [(8, 8)], 2)
    ys, xs = np.nonzero(covered)
    assert covered.sum() == 13  # centres with dx^2 + dy^2 <= 4
    assert ((xs - 8) ** 2 + (ys - 8) ** 2 <= 4).all()


def test_a_stroke_changes_only_the_covered_pixels_and_leaves_its_input_untouched():
    label = np.random.default_rng(0).integers(0, NUM_CLASSES, (20, 20)).astype(np.uint8)
    before = label.copy()
    out = paint_stroke(label, [(3, 3), (15, 10)], HAIR, 1.5)
    covered = stroke_mask(label.shape, [(3, 3), (15, 10)], 1.5)
    np.testing.assert_array_equal(label, before)
    assert (out[covered] == HAIR).all()
    np.testing.assert_array_equal(out[~covered], label[~covered])


def test_strokes_reject_unknown_classes_and_negative_radii_naming_the_value():
    with pytest.raises(ValueError, match="23"):
        paint_stroke(_blank(), [(1, 1)], 23, 1)
    with pytest.raises(ValueError, match="beard"):
        paint_stroke(_blank(), [(1, 1)], "beard", 1)
    with pytest.raises(ValueError, match="-1"):
        paint_stroke(_blank(), [(1, 1)], "hair", -1)


# --- one-click edits ------------------------------------------------------------------------

def _face_with_open_mouth():
    label = _blank(16, 16, SKIN)
    label[5, 4:12] = U_LIP
    label[6:9, 4:12] = MOUTH
    label[9, 4:12] = L_LIP
    return label


def test_close_mouth_turns_the_mouth_into_upper_and_lower_lip_and_nothing_else():
    label = _face_with_open_mouth()
    out = close_mouth(label)
    assert not (out == MOUTH).any()
    changed = out != label
    np.testing.assert_array_equal(changed, label == MOUTH)
    assert (out[6, 4:12] == U_LIP).all() and (out[8, 4:12] == L_LIP).all()


def test_remove_glasses_closes_the_part_with_the_surrounding_class():
    label = _blank(16, 16, SKIN)
    label[6:9, 3:13] = CLASS_IDS["eye_g"]
    assert (remove_glasses(label) == SKIN).all()


def test_swap_hair_takes_the_donor_hair_region_under_classes_painted_after_hair():
    label = _blank(16, 16, SKIN)
    label[0:3, :] = HAIR  # own hair: a fringe on top
    label[13:, :] = CLASS_IDS["cloth"]
    donor = _blank(16, 16, 0)
    donor[:, 0:3] = HAIR  # donor's hair: down the left side, also where our cloth is
    out = swap_hair(label, donor)
    np.testing.assert_array_equal(out == HAIR, (donor == HAIR) & (label != CLASS_IDS["cloth"]))
    assert (out[13:, :] == CLASS_IDS["cloth"]).all()
    assert (out[0:3, 3:] == SKIN).all()  # our old fringe, grown over by the skin below it


def test_ebst_marks_lie_at_plus_and_minus_one_over_lambda_inter():
    assert ebst_marks(2.5) == pytest.approx({"z^inter": 0.4, "z^outer": -0.4})
    with pytest.raises(ValueError, match="lambda_inter"):
        ebst_marks(0)


# --- frames and the render queue --------------------------------------------------------------

def test_frame_png_is_a_valid_png_upsampled_by_pixel_repetition():
    label = np.zeros((8, 8), np.int64)
    label[2, 3] = HAIR
    rgb = _png(frame_png(label, scale=4))
    assert rgb.shape == (32, 32, 3)
    assert (rgb[8:12, 12:16] == rgb[8, 12]).all() and not (rgb[8, 12] == rgb[0, 0]).all()


def test_the_render_queue_drops_states_that_arrive_while_a_frame_renders():
    started, release, seen = threading.Event(), threading.Event(), []

    def work(state):
        seen.append(state)
        started.set()
        release.wait(5)

    queue = LatestOnly(work, threaded=True)
    queue.request(0)
    assert started.wait(5)
    for k in range(1, 10):  # a fast slider while frame 0 renders
        queue.request(k)
    release.set()
    assert queue.wait(5)
    assert seen == [0, 9]
    assert (queue.requested, queue.completed, queue.dropped) == (10, 2, 8)


def test_the_render_queue_keeps_serving_after_a_failed_frame():
    errors = []
    queue = LatestOnly(lambda s: 1 / s, threaded=False, on_error=errors.append)
    queue.request(0)
    queue.request(1)
    assert isinstance(queue.last_error, ZeroDivisionError) and len(errors) == 1 and queue.completed == 2


# --- latent interpolation -----------------------------------------------------------------------

def test_the_interpolation_ui_builds_without_a_display_and_shows_png_frames(editor, bank):
    ui, ctl = interpolation_widget(editor, bank, threaded=False)
    assert ui is ctl.widget
    assert _png(ctl.image_png).shape == _png(ctl.mask_png).shape == (256, 256, 3)
    assert ctl.label.shape == (bank.size, bank.size)


def test_moving_the_slider_renders_a_new_mask_and_face(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=False)
    image0, mask0, frames0 = ctl.image_png, ctl.label.clone(), ctl.frames
    ctl.slider.value = 1.5
    assert ctl.frames == frames0 + 1
    assert ctl.image_png != image0 and not torch.equal(ctl.label, mask0)
    _png(ctl.image_png)


def test_the_mask_at_t_decodes_the_interpolated_latent(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=False, t=0.7)
    expected = editor.interpolate(bank[0]["label"], bank[1]["label"], 0.7)
    assert torch.equal(ctl.label, expected)


def test_the_play_button_steps_the_slider_through_t(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=False)
    ctl.play.value = 28  # the 28th of 60 steps from t = -1
    assert ctl.t == pytest.approx(0.4)
    ctl.slider.value = -1.0
    assert ctl.play.value == 0


def test_choosing_another_face_b_changes_the_mask_at_t_1(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=False, t=1.0)
    before = ctl.label.clone()
    ctl.face_b.value = 4
    assert torch.equal(ctl.label, editor.interpolate(bank[0]["label"], bank[4]["label"], 1.0))
    assert not torch.equal(ctl.label, before)


def test_the_caption_and_jump_buttons_mark_ebst_z_inter_and_z_outer(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=False)
    assert "+0.40" in ctl.caption.value and "-0.40" in ctl.caption.value and "2.5" in ctl.caption.value
    ctl.jump["z^outer"].click()
    assert ctl.t == pytest.approx(-0.4) and "z^outer" in ctl.where.value
    ctl.jump["z^inter"].click()
    assert ctl.t == pytest.approx(0.4) and "z^inter" in ctl.where.value


def test_interpolation_without_a_maskvae_says_to_train_it(cfg, bank):
    with pytest.raises(ValueError, match="MaskVAE"):
        interpolation_widget(Editor(build_dmn(cfg)), bank, threaded=False)


def test_threaded_rendering_catches_up_with_the_latest_slider_value(editor, bank):
    _, ctl = interpolation_widget(editor, bank, threaded=True)
    for t in np.arange(-1.0, 2.0, 0.25):
        ctl.slider.value = float(t)
    assert ctl.wait(30)
    assert torch.equal(ctl.label, editor.interpolate(bank[0]["label"], bank[1]["label"], ctl.t))
    assert ctl.queue.completed + ctl.queue.dropped == ctl.queue.requested


# --- mask editor ------------------------------------------------------------------------------

def test_a_stroke_in_the_editor_changes_exactly_the_painted_pixels_and_the_frame(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    before, image0 = ctl.label, ctl.image_png
    changed = ctl.apply_stroke([(4, 4), (20, 20)], cls="hair", radius=1)
    covered = stroke_mask(before.shape, [(4, 4), (20, 20)], 1)
    np.testing.assert_array_equal(ctl.label != before, covered & (before != HAIR))
    np.testing.assert_array_equal(changed, ctl.label != before)
    assert ctl.image_png != image0
    _png(ctl.image_png)


def test_the_brush_widgets_choose_the_class_and_radius_of_the_next_stroke(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.brush_class.value = CLASS_IDS["hat"]
    ctl.brush_size.value = 3
    ctl.apply_stroke([(16, 16)])
    assert (ctl.label[stroke_mask(ctl.label.shape, [(16, 16)], 3)] == CLASS_IDS["hat"]).all()
    assert (ctl.label == CLASS_IDS["hat"]).sum() >= 29  # a radius-3 disk has 29 pixel centres


def test_a_palette_swatch_selects_its_class(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.palette.children[CLASS_IDS["l_brow"]].click()
    assert ctl.brush_class.value == CLASS_IDS["l_brow"]


def test_dragging_on_the_canvas_paints_one_undoable_stroke(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False, brush_class="cloth", brush_size=0)
    before, s = ctl.label, ctl.scale
    for event, x in (("mouse_down", 2), ("mouse_move", 6), ("mouse_move", 10), ("mouse_up", 10)):
        ctl.canvas._handle_frontend_event(None, {"event": event, "x": (x + 0.5) * s, "y": (3 + 0.5) * s}, [])
    expected = before.copy()
    expected[3, 2:11] = CLASS_IDS["cloth"]
    np.testing.assert_array_equal(ctl.label, expected)
    assert ctl.undo()
    np.testing.assert_array_equal(ctl.label, before)


def test_undo_restores_the_pixels_of_the_last_stroke_only(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(5, 5)], cls="hat", radius=2)
    after_first = ctl.label
    image_first = ctl.image_png
    ctl.apply_stroke([(20, 20)], cls="cloth", radius=2)
    assert ctl.undo()
    np.testing.assert_array_equal(ctl.label, after_first)
    assert ctl.image_png == image_first
    assert ctl.undo() and not ctl.undo()
    np.testing.assert_array_equal(ctl.label, ctl.original_label)


def test_reset_returns_to_the_face_mask_and_can_be_undone(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(8, 8)], cls="hat", radius=3)
    edited = ctl.label
    ctl.reset_button.click()
    np.testing.assert_array_equal(ctl.label, ctl.original_label)
    ctl.undo_button.click()
    np.testing.assert_array_equal(ctl.label, edited)


def test_the_close_mouth_button_leaves_no_mouth_pixels(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(12, 22), (20, 22)], cls="mouth", radius=1)
    assert (ctl.label == MOUTH).any()
    ctl.edit_buttons["close mouth"].click()
    assert not (ctl.label == MOUTH).any()


def test_the_hair_button_takes_the_hair_region_of_the_donor_face(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.donor.value = 3
    donor = bank[3]["label"].numpy().astype(np.uint8)
    expected = ONE_CLICK_EDITS["hair from other face"](ctl.label, donor)
    ctl.edit_buttons["hair from other face"].click()
    np.testing.assert_array_equal(ctl.label, expected)
    np.testing.assert_array_equal(ctl.label == HAIR, (donor == HAIR) & (ctl.label <= HAIR))


def test_choosing_another_face_loads_its_mask_and_clears_undo(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(8, 8)], cls="hat", radius=3)
    ctl.face.value = 2
    np.testing.assert_array_equal(ctl.label, bank[2]["label"].numpy())
    assert not ctl.can_undo


# --- style copy and style cache --------------------------------------------------------------------

def test_choosing_a_reference_face_restyles_the_mask(editor, bank):
    _, ctl = style_copy_widget(editor, bank, threaded=False, mask_face=0, reference=1)
    image1 = ctl.image_png
    ctl.reference.value = 3
    assert ctl.image_png != image1
    expected = editor.render(bank[0]["label"], editor.style(bank[3]["image"], bank[3]["label"]))
    np.testing.assert_array_equal(_png(ctl.image_png), _png(frame_png(expected, ctl.scale)))


def test_style_copy_follows_the_strokes_of_the_mask_editor(editor, bank):
    _, paint = mask_editor(editor, bank, threaded=False)
    _, ctl = style_copy_widget(editor, bank, threaded=False, mask_source=paint)
    image0 = ctl.image_png
    paint.apply_stroke([(16, 16)], cls="hat", radius=5)
    np.testing.assert_array_equal(ctl.label, paint.label)
    assert ctl.image_png != image0


def test_each_reference_style_is_computed_once_and_cached_under_the_face_name(editor, bank):
    calls = []
    style = editor.dmn.style
    editor.dmn.style = lambda *a: calls.append(1) or style(*a)
    _, ctl = style_copy_widget(editor, bank, threaded=False, reference=1)
    for ref in (2, 1, 2, 1):
        ctl.reference.value = ref
    assert len(calls) == 2
    assert {bank[1]["name"], bank[2]["name"]} <= set(editor._styles)


# --- the app ---------------------------------------------------------------------------------

def test_the_app_puts_the_mask_editor_first_and_links_style_copy_to_the_editor(editor, bank):
    tab, app = editing_app(editor=editor, dataset=bank, threaded=False)
    assert tab.titles == ("Mask editor", "Latent interpolation", "Style copy", "Your own face")
    assert tab.children[0] is app.mask_editor.widget and tab.children[3] is app.uploads.widget
    app.mask_editor.apply_stroke([(10, 10)], cls="hat", radius=4)
    np.testing.assert_array_equal(app.style_copy.label, app.mask_editor.label)


def test_every_tab_opens_with_a_one_line_hint(editor, bank):
    tab, _ = editing_app(editor=editor, dataset=bank, threaded=False)

    def hints(widget):
        found = [widget.value] if "maskgan-hint" in str(getattr(widget, "value", "")) else []
        return found + [h for child in getattr(widget, "children", ()) for h in hints(child)]
    for title, child in zip(tab.titles, tab.children):
        assert hints(child), f"the {title!r} tab has no hint"


def test_the_app_page_says_what_to_train_when_the_run_has_no_checkpoints(tmp_path):
    ready, message = run_status(tmp_path)
    assert not ready and "make demo" in message and "train dmn" in message
    # `make demo` trains into runs/demo, so that is the run to serve next, not the empty one; the README's
    # `make app RUN_DIR=runs/authors` is filled by importing the authors' weights
    assert "`make app RUN_DIR=runs/demo`" in message and f"make app RUN_DIR={tmp_path}`" not in message
    assert f"import-weights authors-generator latest_net_G.pth --run-dir {tmp_path}" in message
    page = app_page(tmp_path)
    assert "make demo" in page.children[1].value


def test_the_render_thread_uses_its_own_torch_thread_count(editor, bank):
    seen = []
    torch.set_num_threads(2)
    try:
        _, ctl = interpolation_widget(editor, bank, threaded=True, render_threads=1)
        ctl.on_frame(lambda: seen.append(torch.get_num_threads()))
        ctl.slider.value = 0.5
        assert ctl.wait(30)
        assert seen == [1] and torch.get_num_threads() == 2  # the kernel's own thread is left alone
    finally:
        torch.set_num_threads(1)


def test_the_check_command_says_what_to_train_and_fails_for_an_empty_run(tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "maskgan.widgets", "check", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "make demo" in out.stderr


def test_a_face_bank_finds_faces_by_name_and_names_the_valid_range(bank):
    assert bank.index(bank[2]["name"]) == 2
    with pytest.raises(IndexError, match="0..5"):
        bank[6]

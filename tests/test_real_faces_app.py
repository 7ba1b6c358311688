"""Real faces in the app (issue 15, sections 2 and 4): a faces folder, uploads with visible errors,
and the painting preview (half size while the mouse drags, the full frame when the stroke ends)."""
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import spread_editor, spread_weights
from PIL import Image

from maskgan.config import Config
from maskgan.editing import Editor, preview_label, preview_psnr
from maskgan.labels import CLASS_IDS
from maskgan.nn import build_dmn
from maskgan.widgets import FACES_ENV, FaceBank, app_page, editing_app, mask_editor

SKIN, HAIR, HAT = CLASS_IDS["skin"], CLASS_IDS["hair"], CLASS_IDS["hat"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cfg():
    return Config.preset("smoke")


@pytest.fixture()
def editor(cfg):
    return spread_editor(cfg)


def _face_png(size, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _mask_png(size, value=SKIN, mode="L"):
    m = np.zeros((size, size), np.uint8)
    m[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = value
    im = Image.fromarray(m) if mode == "L" else Image.fromarray(np.stack([m] * 3, -1))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def faces_dir(tmp_path):
    """Three faces in the authors' sample layout: N.jpg (128 px) + N.png label map (64 px)."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(_face_png(128, i))
        (folder / f"{i}.png").write_bytes(_mask_png(64, (SKIN, HAIR, HAT)[i]))
    return folder


# --- the preview -------------------------------------------------------------------------------

def test_preview_label_takes_the_centre_of_each_cell():
    label = torch.arange(16).view(4, 4) % 19
    assert preview_label(label, 2).tolist() == [[5, 7], [13, 15]]
    assert preview_label(label, 1) is label


def test_render_preview_is_full_size_and_close_to_but_not_the_full_frame(editor, cfg):
    from maskgan.data import build_dataset
    face = build_dataset(cfg.data, "val", length=1)[0]
    style = editor.style(face["image"], face["label"])
    full = editor.render(face["label"], style)
    fast = editor.render_preview(face["label"], style, 2)
    assert fast.shape == full.shape and float(fast.abs().max()) <= 1
    assert not torch.equal(fast, full)
    p = preview_psnr(editor, face["label"], style, 2)
    assert math.isfinite(p) and p > 3.0  # spread random weights, 32 px: about 10 dB here; noise would be ~0
    assert preview_psnr(editor, face["label"], style, 1) == math.inf


def test_dragging_renders_previews_and_the_stroke_end_renders_the_full_frame(editor, cfg):
    from maskgan.data import build_dataset
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=2)
    _, ctl = mask_editor(editor, bank, threaded=False, brush_class="hat", brush_size=2, preview_factor=2)
    assert ctl.preview_factor == 2 and ctl.last_frame == "full"
    s = ctl.scale
    for event, x in (("mouse_down", 4), ("mouse_move", 12), ("mouse_move", 20)):
        ctl.canvas._handle_frontend_event(None, {"event": event, "x": (x + 0.5) * s, "y": 10.5 * s}, [])
        assert ctl.last_frame == "preview"
    preview_png = ctl.image_png
    assert ctl.previews == 3
    ctl.canvas._handle_frontend_event(None, {"event": "mouse_up", "x": 20.5 * s, "y": 10.5 * s}, [])
    assert ctl.last_frame == "full" and ctl.previews == 3 and ctl.image_png != preview_png
    face = bank[0]
    expected = editor.edit(face["image"], face["label"], torch.from_numpy(ctl.label.astype(np.int64)),
                           key=face["name"])
    from maskgan.widgets import frame_png
    assert ctl.image_png == frame_png(expected, ctl.scale)  # the full frame of the painted mask, composited


def test_strokes_from_python_render_full_frames_and_small_faces_get_no_preview(editor, cfg):
    from maskgan.data import build_dataset
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=2)
    _, ctl = mask_editor(editor, bank, threaded=False)
    assert ctl.preview_factor == 1  # 32 px faces: a preview would save nothing
    _, ctl = mask_editor(editor, bank, threaded=False, preview_factor=2)
    ctl.apply_stroke([(5, 5), (20, 20)], cls="hat", radius=3)
    assert ctl.last_frame == "full" and ctl.previews == 0


def test_a_preview_factor_the_network_cannot_take_falls_back_to_full_frames(editor, cfg):
    from maskgan.data import build_dataset
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=2)
    _, ctl = mask_editor(editor, bank, threaded=False, preview_factor=4)  # 32 / 4 = 8 px < the DMN's 16
    assert ctl.preview_factor == 1


# --- a faces folder ----------------------------------------------------------------------------

def test_the_app_shows_every_face_of_a_folder(editor, faces_dir):
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False, max_faces=2)
    assert app.faces == faces_dir and len(app.bank) == 3  # a chosen folder is shown whole
    assert [n for n, _ in app.mask_editor.face.options] == ["0", "1", "2"]
    assert int(app.bank[2]["label"][16, 16]) == HAT and app.bank[2]["image"].shape == (3, 32, 32)


def test_the_app_page_reads_the_faces_folder_from_the_environment(faces_dir, tmp_path, monkeypatch, cfg):
    from maskgan.checkpoint import save_checkpoint
    run_dir = tmp_path / "run"
    torch.manual_seed(0)
    save_checkpoint(run_dir / "dmn", 1, {"dmn": spread_weights(build_dmn(cfg))}, {}, {"config": cfg.to_dict()})
    monkeypatch.setenv(FACES_ENV, str(faces_dir))
    page = app_page(run_dir, threaded=False)
    notes = page.children[-1].children[0].value  # the help box
    assert f"faces of {faces_dir}" in notes and "no face parser" in notes
    assert [n for n, _ in page.app.mask_editor.face.options] == ["0", "1", "2"]
    (faces_dir / "3.jpg").write_bytes(_face_png(64, 9))  # an image without a mask, and no parser
    page = app_page(run_dir, threaded=False)
    assert "images without a mask: 3.jpg" in page.children[1].value  # said in the page, no traceback


def test_the_check_command_reads_the_faces_folder(faces_dir, tmp_path, cfg):
    import subprocess
    import sys
    from maskgan.checkpoint import save_checkpoint
    run_dir = tmp_path / "run"
    torch.manual_seed(0)
    save_checkpoint(run_dir / "dmn", 1, {"dmn": build_dmn(cfg)}, {}, {"config": cfg.to_dict()})
    out = subprocess.run([sys.executable, "-m", "maskgan.widgets", "check", str(run_dir), "--faces", str(faces_dir)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "3 faces at 32 px" in out.stdout
    (faces_dir / "stray.txt").write_text("x")
    out = subprocess.run([sys.executable, "-m", "maskgan.widgets", "check", str(run_dir), "--faces", str(faces_dir)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "stray.txt" in out.stderr and "Traceback" not in out.stderr


# --- uploads -----------------------------------------------------------------------------------

def test_an_uploaded_image_and_mask_become_a_face_selected_in_the_editor(editor, faces_dir):
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False)
    frames = app.mask_editor.frames
    index = app.uploads.add(_face_png(200, 7), _mask_png(100, HAIR), image_name="me.jpg", mask_name="me.png")
    assert index == 3 and len(app.bank) == 4
    assert app.mask_editor.face.value == 3 and app.bank[3]["name"] == "upload 1: me.jpg"
    assert int(app.mask_editor.label[16, 16]) == HAIR and app.mask_editor.frames > frames
    assert ("upload 1: me.jpg", 3) in app.style_copy.reference.options
    assert app.style_copy.mask_face.options[0][1] == app.style_copy.EDITED  # "edited mask" stays first
    assert "added" in app.uploads.message.value and "#b00020" not in app.uploads.message.value  # added (amber: a SynthFaces model meets an upload)


@pytest.mark.parametrize("image, mask, says", [
    (b"\x00not an image", None, "broken.jpg cannot be read as an image"),
    (None, _mask_png(32, SKIN, mode="RGB"), "m.png is a mode 'RGB' image"),
    (None, _mask_png(32, 23), "m.png has label value(s) 23; CelebAMask-HQ labels are 0..18"),
    (None, None, "has no mask, and this app has no face parser"),
], ids=["not-an-image", "colour-mask", "ids-out-of-range", "no-mask-no-parser"])
def test_a_bad_upload_shows_a_message_and_the_app_keeps_working(editor, faces_dir, image, mask, says):
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False, parser=None)
    image = image or _face_png(64, 1)
    assert app.uploads.add(image, mask, image_name="broken.jpg" if image.startswith(b"\x00") else "face.jpg",
                           mask_name="m.png") is None
    import html
    assert says in html.unescape(app.uploads.message.value) and "#b00020" in app.uploads.message.value
    assert len(app.bank) == 3 and app.mask_editor.face.value == 0
    app.mask_editor.apply_stroke([(8, 8)], cls="hat", radius=2)  # still paints and renders
    assert app.mask_editor.last_frame == "full" and app.mask_editor.queue.last_error is None


def test_an_upload_without_a_mask_is_parsed_when_the_app_has_a_parser(editor, faces_dir):
    class BrightIsSkin:
        def parse(self, images):
            return (images.mean(dim=1) > 0).long() * SKIN

    arr = np.zeros((90, 120, 3), np.uint8)
    arr[30:60, 50:80] = 240
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False, parser=BrightIsSkin())
    index = app.uploads.add(buf.getvalue(), image_name="photo.jpg")
    assert index == 3 and "cropped and parsed" in app.uploads.message.value
    label = app.bank[3]["label"]
    assert (label == SKIN).any() and (label == 0).any()
    app.uploads.margin.value = 0.0  # a tighter crop: the face fills more of the frame
    app.uploads.add(buf.getvalue(), image_name="photo.jpg")
    tight = app.bank[4]["label"]
    assert float((tight == SKIN).float().mean()) > 1.5 * float((label == SKIN).float().mean())


def test_the_upload_widgets_feed_the_same_path(editor, faces_dir):
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False)
    up = app.uploads
    up.add_button.click()
    assert "choose an image first" in up.message.value
    from datetime import datetime, timezone
    now = datetime.now(timezone.utc)
    up.image_upload.value = ({"name": "a.png", "type": "image/png", "size": 1, "content": memoryview(_face_png(64, 3)),
                              "last_modified": now},)
    up.mask_upload.value = ({"name": "a_mask.png", "type": "image/png", "size": 1,
                             "content": memoryview(_mask_png(64, HAT)), "last_modified": now},)
    up.add_button.click()
    assert len(app.bank) == 4 and app.bank[3]["name"] == "upload 1: a.png" and up.image_upload.value == ()


def test_editor_open_faces_reads_a_folder_at_the_models_size(editor, faces_dir):
    faces = editor.open_faces(faces_dir)
    assert len(faces) == 3 and faces[0]["image"].shape == (3, 32, 32)
    bare = Editor(editor.dmn)  # no config: the size is unknown, and the error says what to use instead
    from maskgan.errors import ConfigError
    with pytest.raises(ConfigError, match="maskgan.photo.open_faces"):
        bare.open_faces(faces_dir)


def test_the_bench_measures_the_preview_on_a_trained_run(tmp_path, monkeypatch, cfg):
    from maskgan.bench import BENCHMARKS, _trained_preview_rows
    from maskgan.train import train
    from maskgan.widgets import RUN_DIR_ENV
    assert "preview" in BENCHMARKS
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "nothing"))
    assert _trained_preview_rows("cpu") == []  # no trained run: no row, no error
    train("dmn", cfg, tmp_path / "run", progress=False)
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    (row,) = _trained_preview_rows("cpu")
    assert row["benchmark"] == "preview PSNR vs full frame" and row["unit"] == "dB"
    assert "16px -> 32px, trained dmn of run (8 val faces), fp32" == row["setting"]
    assert math.isfinite(row["value"]) and row["value"] > 0


def test_the_style_copy_tab_follows_a_previewed_stroke_once_it_ends(editor, cfg):
    from maskgan.data import build_dataset
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=3)
    _, app = editing_app(editor=editor, dataset=bank, threaded=False, preview_factor=2)
    copy_frames = app.style_copy.frames
    s = app.mask_editor.scale
    app.mask_editor.brush_class.value = HAT
    for event, x in (("mouse_down", 4), ("mouse_move", 14), ("mouse_move", 24)):
        app.mask_editor.canvas._handle_frontend_event(None, {"event": event, "x": (x + 0.5) * s, "y": 8.5 * s}, [])
    assert app.style_copy.frames == copy_frames  # no full frame of the other tab during the drag
    app.mask_editor.canvas._handle_frontend_event(None, {"event": "mouse_up", "x": 24.5 * s, "y": 8.5 * s}, [])
    assert app.style_copy.frames == copy_frames + 1
    np.testing.assert_array_equal(app.style_copy.label, app.mask_editor.label)


def test_a_bank_refuses_a_second_face_of_the_same_name_or_another_size(cfg):
    from maskgan.data import build_dataset
    bank = FaceBank(build_dataset(cfg.data, "val"), max_faces=2)
    face = dict(bank[0])
    with pytest.raises(ValueError, match="already has a face named"):
        bank.add(face)
    with pytest.raises(ValueError, match=r"is \(16, 16\) but this bank's faces are \(32, 32\)"):
        bank.add({"image": torch.zeros(3, 16, 16), "label": torch.zeros(16, 16, dtype=torch.long), "name": "small"})
    assert bank.add({**face, "name": "copy"}) == 2 and len(bank) == 3 and bank.options[2] == ("copy", 2)


def test_a_relative_faces_folder_is_found_from_the_repository_root(monkeypatch, tmp_path):
    from maskgan.widgets import resolve_faces
    monkeypatch.chdir(tmp_path)  # e.g. Voila's kernel in notebooks/
    monkeypatch.delenv(FACES_ENV, raising=False)
    assert resolve_faces() is None
    assert resolve_faces("notebooks") == Path(__file__).resolve().parents[1] / "notebooks"
    monkeypatch.setenv(FACES_ENV, str(tmp_path))
    assert resolve_faces() == tmp_path


# --- the page: models named, what they know said, developer notes folded away ---------------------

def test_the_page_names_the_shipped_models_in_a_badge_and_folds_the_notes(monkeypatch):
    from maskgan.pretrained import PRETRAINED_ROOT
    page = app_page(PRETRAINED_ROOT / "synthfaces64", threaded=False)
    title, header, precision_menu, tabs, help_box = page.children
    assert "maskgan-badge" in header.value and "Shipped models: SynthFaces 64 px" in header.value
    assert "/" + "work" not in header.value.split("</span>")[0]  # a name, not a machine path
    assert "trained on SynthFaces" in header.value
    assert tabs.titles[0] == "Mask editor" and help_box.selected_index is None  # notes collapsed
    assert "MASKGAN_RUN_DIR" in help_box.children[0].value


def test_a_photo_given_to_synthfaces_models_gets_a_warning_not_a_green_light(cfg, faces_dir):
    class SynthParser:  # a parser that, like the kit's own, was trained on SynthFaces
        def __init__(self):
            self.cfg = cfg

        def parse(self, images):
            return torch.full(images.shape[:1] + images.shape[2:], SKIN, dtype=torch.long)

    torch.manual_seed(0)
    ed = Editor(spread_weights(build_dmn(cfg)))
    ed.cfg = cfg
    _, app = editing_app(editor=ed, faces=faces_dir, threaded=False, parser=SynthParser())
    index = app.uploads.add(_face_png(90, 3), image_name="me.jpg")
    message = app.uploads.message.value
    assert index is not None and "#8a4b00" in message  # amber, not green
    assert "trained on SynthFaces" in message and "face parser was trained on SynthFaces" in message
    assert "is the whole 90x90 image" in message  # the parser found every pixel: no face to crop around


def test_the_mask_upload_says_required_without_a_parser(editor, faces_dir):
    _, app = editing_app(editor=editor, faces=faces_dir, threaded=False, parser=None)
    assert app.uploads.mask_upload.description == "mask (required)"


def test_the_page_has_a_precision_menu_that_switches_the_frames(cfg, monkeypatch):
    from maskgan import precision
    from maskgan.checkpoint import save_checkpoint
    monkeypatch.setattr(precision, "bf16_supported", lambda device=None: True)
    import tempfile
    run_dir = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    save_checkpoint(run_dir / "dmn", 1, {"dmn": spread_weights(build_dmn(cfg))}, {}, {"config": cfg.to_dict()})
    page = app_page(run_dir, threaded=False, precision="fp32")
    menu = page.children[2].children[0]
    assert page.app.editor.precision == "fp32" and menu.value == "fp32"
    frames = page.app.mask_editor.frames
    menu.value = "bf16"
    assert page.app.editor.precision == "bf16" and page.app.mask_editor.frames == frames + 1
    assert "frames render in bf16" in page.children[2].children[1].value

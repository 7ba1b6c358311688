"""The mask editor composites every frame, shows the paper's re-render on request, and saves the edited
image (the whole photo for an uploaded photo) and mask (issue 21, section 4)."""
import base64
import io
import re

import numpy as np
import pytest
import torch
from matplotlib import cbook
from model_fixtures import spread_editor
from PIL import Image

from maskgan.composite import RERENDER, default_margin, grow
from maskgan.config import Config
from maskgan.data.folder import read_mask
from maskgan.labels import CLASS_IDS
from maskgan.widgets import FaceBank, editing_app, frame_png, mask_editor

SKIN, HAT = CLASS_IDS["skin"], CLASS_IDS["hat"]
PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a real photo that ships with matplotlib


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cfg():
    return Config.preset("smoke")


@pytest.fixture()
def editor(cfg):
    return spread_editor(cfg, vae=False)


@pytest.fixture()
def bank(cfg):
    from maskgan.data import build_dataset
    return FaceBank(build_dataset(cfg.data, "val"), max_faces=2)


@pytest.fixture(autouse=True)
def edits_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKGAN_EDITS", str(tmp_path / "edits"))
    return tmp_path / "edits"


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


def test_a_stroke_changes_the_frame_only_near_the_stroke(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    before = _decode(ctl.image_png)
    changed = ctl.apply_stroke([(4, 4), (10, 4)], cls=HAT, radius=1)
    after = _decode(ctl.image_png)
    near = grow(torch.from_numpy(changed), default_margin(bank.size)).numpy()
    near = np.repeat(np.repeat(near, ctl.scale, 0), ctl.scale, 1)
    assert (after != before).any()
    assert np.array_equal(after[~near], before[~near])
    assert np.array_equal(before, _decode(frame_png(bank[0]["image"], ctl.scale)))  # no edit: the face itself


def test_the_rerender_toggle_shows_the_papers_whole_face_edit(editor, bank):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(4, 4), (10, 4)], cls=HAT, radius=1)
    assert ctl.rerender_image.value == b""
    ctl.show_rerender.value = True
    face = bank[0]
    full = editor.rerender(face["image"], face["label"], torch.from_numpy(ctl.label.astype(np.int64)))
    assert ctl.rerender_image.value == frame_png(full, ctl.scale)
    ctl.blend.value = RERENDER
    assert ctl.image_png == frame_png(full, ctl.scale)


def test_save_mask_writes_ids_the_folder_reader_loads_back(editor, bank, edits_dir):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(4, 4), (10, 4)], cls=HAT, radius=1)
    path = ctl.save_mask()
    assert path.parent == edits_dir and path.name.endswith("_mask.png")
    assert np.array_equal(read_mask(path, bank.size).numpy(), ctl.label.astype(np.int64))


def test_save_image_writes_the_edit_shown(editor, bank, edits_dir):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(4, 4), (10, 4)], cls=HAT, radius=1)
    path = ctl.save_image()
    saved = np.asarray(Image.open(path))
    assert saved.shape == (bank.size, bank.size, 3)
    assert np.array_equal(np.repeat(np.repeat(saved, ctl.scale, 0), ctl.scale, 1), _decode(ctl.image_png))


def test_the_save_buttons_give_download_links_with_the_files(editor, bank, edits_dir):
    _, ctl = mask_editor(editor, bank, threaded=False)
    ctl.apply_stroke([(4, 4), (10, 4)], cls=HAT, radius=1)
    ctl.save_image_button.click()
    ctl.save_mask_button.click()
    links = dict(re.findall(r"download='([^']+)' href='data:image/png;base64,([^']+)'", ctl.downloads.value))
    assert set(links) == {p.name for p in edits_dir.iterdir()} and len(links) == 2
    for name, data in links.items():
        assert base64.b64decode(data) == (edits_dir / name).read_bytes()


def test_an_uploaded_photo_is_saved_whole_at_its_size(editor, bank, edits_dir):
    class CentreIsSkin:
        def parse(self, images):
            n, _, h, w = images.shape
            lab = torch.zeros(n, h, w, dtype=torch.long)
            lab[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = SKIN
            return lab

    _, app = editing_app(editor=editor, dataset=bank.dataset, threaded=False, parser=CentreIsSkin(), max_faces=2)
    with open(PHOTO, "rb") as f:
        index = app.uploads.add(f.read(), image_name="grace_hopper.jpg")
    assert index is not None, app.uploads.message.value
    ctl = app.mask_editor
    assert int(ctl.face.value) == index
    ctl.apply_stroke([(14, 20), (18, 20)], cls=HAT, radius=1)
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    saved = np.asarray(Image.open(ctl.save_image()))
    assert saved.shape == photo.shape == (600, 512, 3)
    changed = (saved != photo).any(-1)
    assert changed.any() and changed.mean() < 0.1  # a small stroke changes a small part of the photo

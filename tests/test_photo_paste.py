"""Your photo back, whole (maskgan.photo.paste_back, edit_photo): a real photo in, the same photo out
with only the edited region changed, at its full resolution."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib import cbook
from PIL import Image

from maskgan.composite import Composite, default_margin, grow
from maskgan.data.folder import read_mask
from maskgan.errors import DataError
from maskgan.labels import CLASS_IDS
from maskgan.photo import edit_photo, paste_back, save_label_png

#: A real photograph of a face that ships with matplotlib (its sample data): 512 x 600 JPEG.
PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


class EllipseParser:
    """A stand-in face parser: an oval of skin with a mouth, wherever the crop is (the paste-back's
    exactness does not depend on how good the parse is)."""
    device = "cpu"

    def parse(self, images):
        n, _, h, w = images.shape
        yy, xx = np.mgrid[0:h, 0:w] / h
        lab = np.zeros((h, w), np.int64)
        lab[((xx - 0.5) / 0.3) ** 2 + ((yy - 0.5) / 0.4) ** 2 < 1] = CLASS_IDS["skin"]
        lab[((xx - 0.5) / 0.14) ** 2 + ((yy - 0.72) / 0.06) ** 2 < 1] = CLASS_IDS["mouth"]
        return torch.from_numpy(lab)[None].repeat(n, 1, 1)


@pytest.fixture(scope="module")
def editor(smoke_editor):
    return smoke_editor


def _photo() -> np.ndarray:
    with Image.open(PHOTO) as im:
        return np.asarray(im.convert("RGB"))


def _changed_in_photo(result, size: int, shape) -> np.ndarray:
    """Photo pixels that may change: the crop pixels within the margin of a changed label, and their
    8 neighbours (a bilinear sample reaches one crop pixel past its nearest), scaled to the box."""
    x0, y0, x1, y1 = result.face["box"]
    near = grow(result.face["label"] != result.edited_label, default_margin(size)).float()
    near = F.max_pool2d(near[None, None], 3, stride=1, padding=1)
    up = F.interpolate(near, size=(y1 - y0, x1 - x0), mode="nearest")[0, 0].numpy() > 0
    allowed = np.zeros(shape[:2], bool)
    allowed[y0:y1, x0:x1] = up
    return allowed


def test_an_edited_photo_has_the_photos_size_and_only_the_edited_region_changes(editor, tmp_path):
    before = _photo()
    result = edit_photo(PHOTO, editor, EllipseParser(), "close mouth", out=tmp_path / "edited.png")
    after = np.asarray(result.photo)
    assert after.shape == before.shape == (600, 512, 3)
    changed = (after != before).any(-1)
    assert changed.any(), "the mouth was closed, so some pixels must change"
    assert not (changed & ~_changed_in_photo(result, editor.cfg.data.size, before.shape)).any()
    with Image.open(tmp_path / "edited.png") as saved:  # PNG: what was returned, exactly
        assert np.array_equal(np.asarray(saved), after)


def test_pixels_where_the_upsampled_alpha_is_zero_are_the_photos_own(editor):
    before = _photo()
    result = edit_photo(PHOTO, editor, EllipseParser(), "close mouth")
    x0, y0, x1, y1 = result.face["box"]
    alpha = F.interpolate(result.composite.alpha[None, None], size=(y1 - y0, x1 - x0), mode="bilinear",
                          align_corners=False)[0, 0].numpy()
    keep = np.ones(before.shape[:2], bool)
    keep[y0:y1, x0:x1] = alpha == 0
    assert np.array_equal(np.asarray(result.photo)[keep], before[keep])


def test_paste_back_matches_upsampling_the_whole_box():
    # paste_back samples only the window around the edit; the whole box upsampled must agree
    g = torch.Generator().manual_seed(0)
    size, box = 16, (10, 20, 74, 84)
    photo = (torch.rand(100, 90, 3, generator=g) * 255).round().to(torch.uint8).numpy()
    alpha = torch.zeros(size, size)
    alpha[5:9, 6:10] = 1.0
    alpha[4, 6:10] = 0.5
    layer = torch.rand(3, size, size, generator=g) * 2 - 1
    out = np.asarray(paste_back(photo, box, Composite(layer, alpha, layer, layer)))
    a = F.interpolate(alpha[None, None], size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    lay = F.interpolate(layer[None], size=(64, 64), mode="bicubic", align_corners=False)[0].clamp(-1, 1)
    lay = (lay + 1) * 127.5
    crop = torch.from_numpy(photo[20:84, 10:74]).float().permute(2, 0, 1)
    ref = (a * lay + (1 - a) * crop).round().permute(1, 2, 0).numpy()
    got = out[20:84, 10:74].astype(np.float64)
    inside = (a > 0).numpy()
    assert np.abs(got[inside] - ref[inside]).max() <= 1  # float rounding of two interpolation paths
    assert np.array_equal(out[20:84, 10:74][~inside], photo[20:84, 10:74][~inside])
    outside = np.ones(photo.shape[:2], bool)
    outside[20:84, 10:74] = False
    assert np.array_equal(out[outside], photo[outside])


def test_a_box_outside_the_photo_or_not_square_is_refused():
    alpha, layer = torch.zeros(8, 8), torch.zeros(3, 8, 8)
    with pytest.raises(DataError, match="reaches outside"):
        paste_back(_photo(), (500, 0, 600, 100), Composite(layer, alpha, layer, layer))
    with pytest.raises(DataError, match="square crop box"):
        paste_back(_photo(), (0, 0, 100, 50), Composite(layer, alpha, layer, layer))


def test_an_edit_given_as_a_label_map_of_the_wrong_size_is_refused(editor):
    with pytest.raises(DataError, match="the model's size"):
        edit_photo(PHOTO, editor, EllipseParser(), np.zeros((8, 8), np.uint8))


def test_a_saved_edited_mask_loads_back_as_the_same_ids(tmp_path):
    label = np.random.default_rng(0).integers(0, 19, (24, 24)).astype(np.uint8)
    path = save_label_png(label, tmp_path / "mask.png")
    assert np.array_equal(read_mask(path, 24).numpy(), label)


def test_a_phone_photo_comes_back_as_viewers_show_it_at_its_size(editor, tmp_path):
    """A JPEG whose EXIF says "rotate 90 degrees" (Orientation 6) is edited as displayed, and the
    result is the displayed photo: its size, its orientation, its pixels outside the edit."""
    stored = _photo()  # 600 rows x 512 columns
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    from PIL import ImageOps
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert shown.shape == (512, 600, 3)  # displayed: 600 wide, 512 high
    result = edit_photo(path, editor, EllipseParser(), "close mouth")
    after = np.asarray(result.photo)
    assert after.shape == shown.shape
    changed = (after != shown).any(-1)
    assert changed.any() and not (changed & ~_changed_in_photo(result, editor.cfg.data.size, shown.shape)).any()

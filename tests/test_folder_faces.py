"""Faces from any folder (issue 15, sections 2 and 3): the folder rule, sizes, bad files named, and
photos without a mask cropped around the face and parsed."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from maskgan.data import FolderFaces
from maskgan.data.folder import read_face
from maskgan.errors import DataError, DataMissing
from maskgan.labels import CLASS_IDS
from maskgan.photo import face_box, open_faces, prepare_photo, square_box

SKIN, HAIR = CLASS_IDS["skin"], CLASS_IDS["hair"]


def _photo(w, h, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(w, h, value=SKIN) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = value
    return m


def _save(arr, path, mode=None):
    Image.fromarray(arr, mode=mode).save(path)
    return path


def test_the_authors_sample_layout_reads_a_1024_jpg_with_its_512_png(tmp_path):
    _save(_photo(1024, 1024), tmp_path / "0.jpg")
    _save(_mask(512, 512), tmp_path / "0.png")
    _save(_photo(1024, 1024, 1), tmp_path / "1.jpg")
    _save(_mask(512, 512, HAIR), tmp_path / "1.png")
    ds = FolderFaces(tmp_path, 64)
    assert len(ds) == 2 and ds.names == ["0", "1"]
    item = ds[1]
    assert item["name"] == "1" and item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["label"].shape == (64, 64) and item["label"].dtype == torch.int64
    assert -1 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert set(item["label"].unique().tolist()) == {0, HAIR}  # nearest: no new ids
    assert int(item["label"][32, 32]) == HAIR and int(item["label"][2, 2]) == 0


def test_masks_subfolder_and_mask_suffix_are_masks_of_png_images(tmp_path):
    _save(_photo(80, 80), tmp_path / "a.png")
    (tmp_path / "masks").mkdir()
    _save(_mask(80, 80), tmp_path / "masks" / "a.png")
    _save(_photo(40, 40), tmp_path / "b.png")
    _save(_mask(40, 40, HAIR), tmp_path / "b_mask.png")
    ds = FolderFaces(tmp_path, 32)
    assert ds.names == ["a", "b"] and ds.masks["b"].name == "b_mask.png"
    assert int(ds[0]["label"][16, 16]) == SKIN and int(ds[1]["label"][16, 16]) == HAIR


def test_a_non_square_pair_is_centre_cropped_consistently(tmp_path):
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # the centre square is white
    mask = np.zeros((50, 100), np.uint8)
    mask[:, 25:75] = SKIN  # the same square in the mask
    _save(img, tmp_path / "w.jpg")
    _save(mask, tmp_path / "w.png")
    item = FolderFaces(tmp_path, 32)[0]
    assert float(item["image"].mean()) > 0.95  # only the white square is left
    assert (item["label"] == SKIN).all()


def test_a_mask_with_values_outside_0_to_18_names_the_file_and_values(tmp_path):
    _save(_photo(32, 32), tmp_path / "x.jpg")
    _save(_mask(32, 32, 23), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x\.png has label value\(s\) 23; CelebAMask-HQ labels are 0..18"):
        FolderFaces(tmp_path, 32)[0]


def test_a_colour_mask_is_refused_with_its_mode(tmp_path):
    _save(_photo(32, 32), tmp_path / "x.jpg")
    _save(np.zeros((32, 32, 3), np.uint8), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x\.png is a mode 'RGB' image; a mask must be a single-channel label map"):
        FolderFaces(tmp_path, 32)[0]


def test_an_unreadable_image_is_named(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg at all")
    _save(_mask(32, 32), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x\.jpg cannot be read as an image"):
        FolderFaces(tmp_path, 32)[0]


def test_an_image_without_a_mask_needs_a_parser(tmp_path):
    _save(_photo(32, 32), tmp_path / "a.jpg")
    _save(_mask(32, 32), tmp_path / "a.png")
    _save(_photo(32, 32), tmp_path / "lonely.jpg")
    with pytest.raises(DataError, match=r"images without a mask: lonely\.jpg; add each mask .* pass a face parser"):
        FolderFaces(tmp_path, 32)


def test_strays_orphan_masks_and_double_masks_are_errors_not_skipped(tmp_path):
    _save(_photo(32, 32), tmp_path / "a.jpg")
    _save(_mask(32, 32), tmp_path / "a.png")
    _save(_mask(32, 32), tmp_path / "a_mask.png")
    _save(_mask(32, 32), tmp_path / "ghost_mask.png")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError) as e:
        FolderFaces(tmp_path, 32)
    msg = str(e.value)
    assert "notes.txt" in msg and "more than one mask: a (" in msg and "without an image: ghost_mask.png" in msg


def test_a_missing_folder_says_what_is_expected(tmp_path):
    with pytest.raises(DataMissing, match="does not exist; expected a folder of <name>.jpg images"):
        FolderFaces(tmp_path / "nope", 32)


def test_read_face_takes_upload_bytes_and_checks_the_aspect_ratio():
    def png(arr):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    item = read_face(png(_photo(64, 64)), png(_mask(32, 32)), 16, "upload")
    assert item["image"].shape == (3, 16, 16) and int(item["label"][8, 8]) == SKIN
    with pytest.raises(DataError, match="same aspect ratio"):
        read_face(png(_photo(64, 64)), png(_mask(64, 32)), 16, "upload")
    with pytest.raises(DataError, match="the uploaded file cannot be read as an image"):
        read_face(b"garbage", png(_mask(32, 32)), 16, "upload")


# --- photos without a mask (section 3) ----------------------------------------------------------

class BrightIsSkin:
    """A stand-in parser: pixels brighter than mid-grey are skin, the rest background."""

    def __init__(self):
        self.calls = []

    def parse(self, images):
        self.calls.append(tuple(images.shape))
        return (images.mean(dim=1) > 0).long() * SKIN


def _photo_with_face(w=300, h=200, box=(180, 40, 240, 120)):
    arr = np.zeros((h, w, 3), np.uint8)
    left, top, right, bottom = box
    arr[top:bottom, left:right] = 230
    return arr


def test_face_box_uses_face_classes_and_ignores_hair():
    label = np.zeros((20, 20), np.int64)
    label[0:20, 0:20] = HAIR
    label[5:10, 6:12] = SKIN
    assert face_box(label) == (6, 5, 12, 10)
    assert face_box(np.zeros((4, 4), np.int64)) is None


def test_square_box_is_grown_then_kept_inside_the_picture():
    assert square_box((40, 40, 60, 60), 100, 100, margin=0.5) == (30, 30, 70, 70)
    x0, y0, x1, y1 = square_box((0, 0, 30, 20), 100, 50, margin=0.5)
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 50  # moved inside, shrunk to the photo's height
    with pytest.raises(DataError, match="is empty"):
        square_box((5, 5, 5, 9), 10, 10)


def test_prepare_photo_crops_around_the_parsed_face_and_parses_the_crop():
    parser = BrightIsSkin()
    out = prepare_photo(_photo_with_face(), parser, 100, margin=0.25)  # parsed at 100 px: 3 photo px a pixel
    x0, y0, x1, y1 = out["box"]
    assert x1 - x0 == y1 - y0 and abs((x1 - x0) - 120) <= 9  # longer side 80, grown by 2 * 0.25 * 80
    assert x0 <= 180 and x1 >= 240 and y0 <= 40 and y1 >= 120  # the face is inside the crop
    assert abs((x0 + x1) / 2 - 210) <= 3 and abs((y0 + y1) / 2 - 80) <= 3  # centred on it
    assert out["image"].shape == (3, 100, 100) and out["label"].shape == (100, 100)
    assert 0.25 < float((out["label"] == SKIN).float().mean()) < 0.5  # 60x80 face in a 120 square: 0.33
    assert parser.calls == [(1, 3, 100, 100), (1, 3, 100, 100)]  # parsed once to find it, once for M^t


def test_prepare_photo_with_a_user_box_does_not_search():
    parser = BrightIsSkin()
    out = prepare_photo(_photo_with_face(), parser, 16, box=(0, 0, 100, 100))
    assert out["box"] == (0, 0, 100, 100) and len(parser.calls) == 1
    assert int(out["label"].sum()) == 0  # the face is not in that box


def test_a_photo_without_face_pixels_asks_for_a_box():
    with pytest.raises(DataError, match="found no face"):
        prepare_photo(np.zeros((40, 40, 3), np.uint8), BrightIsSkin(), 16)


def test_a_folder_with_bare_photos_is_parsed_when_a_parser_is_given(tmp_path):
    _save(_photo_with_face(), tmp_path / "me.jpg")
    _save(_photo(32, 32), tmp_path / "a.jpg")
    _save(_mask(32, 32, HAIR), tmp_path / "a.png")
    ds = open_faces(tmp_path, 32, parser=BrightIsSkin())
    assert ds.unmasked == ["me"] and "1 parsed" in repr(ds)
    assert int(ds[0]["label"][16, 16]) == HAIR  # a's own mask, not parsed
    me = ds[1]
    assert me["name"] == "me" and (me["label"] == SKIN).any() and me["image"].shape == (3, 32, 32)


def test_an_imported_bisenet_parses_a_photo(tmp_path):
    from faceparsing_layout import RefBiSeNet
    from maskgan.photo import load_parser
    torch.manual_seed(0)
    path = tmp_path / "79999_iter.pth"
    torch.save(RefBiSeNet(19).state_dict(), path)
    parser = load_parser(path)
    out = prepare_photo(_photo(48, 40), parser, 32, box=(0, 0, 40, 40))
    assert out["label"].shape == (32, 32) and 0 <= int(out["label"].min()) and int(out["label"].max()) <= 18


def test_a_palette_mask_reads_its_indices_as_ids(tmp_path):
    _save(_photo(32, 32), tmp_path / "p.jpg")
    im = Image.fromarray(_mask(32, 32, HAIR), mode="L").convert("P")
    im.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert int(FolderFaces(tmp_path, 32)[0]["label"][16, 16]) == HAIR


def test_load_parser_finds_an_imported_parser_or_the_runs_own_and_says_what_to_do_otherwise(tmp_path):
    from faceparsing_layout import RefBiSeNet
    from maskgan.config import Config
    from maskgan.errors import StageMissing
    from maskgan.interop import load_bisenet
    from maskgan.interop.faceparsing import write_parser
    from maskgan.nn import FaceParser
    from maskgan.photo import load_parser
    torch.manual_seed(0)
    torch.save(RefBiSeNet(19).state_dict(), tmp_path / "79999_iter.pth")
    imported = tmp_path / "imported"
    write_parser(load_bisenet(tmp_path / "79999_iter.pth"), imported)
    assert load_parser(imported).kind == "bisenet"
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(StageMissing, match=r"has no face parser.*import-weights bisenet 79999_iter.pth"):
        load_parser(tmp_path / "empty_run")
    with pytest.raises(DataMissing, match="face parser .*nowhere does not exist"):
        load_parser(tmp_path / "nowhere")
    from maskgan.train import train
    own = tmp_path / "own"
    train("parser", Config.preset("smoke"), own, progress=False)
    assert isinstance(load_parser(own), FaceParser)
    with pytest.raises(DataError, match="unknown parser kind 'yolo'"):
        load_parser(own, kind="yolo")


def test_the_app_pre_check_reads_every_face_and_names_an_unreadable_one(tmp_path, capsys):
    """`make app FACES=...` runs this check: before, a truncated image passed it and failed later inside
    a widget callback, with an empty status line."""
    from maskgan.pretrained import DEFAULT_PRETRAINED, PRETRAINED_ROOT
    from maskgan.widgets.__main__ import main as check
    _save(_photo(64, 64), tmp_path / "good.jpg")
    _save(_mask(64, 64), tmp_path / "good.png")
    _save(_photo(64, 64, 1), tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes()[:200])
    _save(_mask(64, 64), tmp_path / "cut.png")
    assert check(["check", str(PRETRAINED_ROOT / DEFAULT_PRETRAINED), "--faces", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 faces cannot be used" in err and "cut.jpg cannot be read as an image" in err
    (tmp_path / "cut.jpg").unlink()
    (tmp_path / "cut.png").unlink()
    assert check(["check", str(PRETRAINED_ROOT / DEFAULT_PRETRAINED), "--faces", str(tmp_path)]) == 0
    assert "1 faces at 64 px" in capsys.readouterr().out

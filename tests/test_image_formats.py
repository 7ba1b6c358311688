"""Photos as phones and scanners write them (issue 22, items 2 and 3): every reader of the kit shows
the picture as a viewer does -- EXIF orientation applied, 16-bit scaled to 8 bits, transparency over
white -- and 16-bit masks are read as ids. The files are real ones, written with Pillow."""
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from maskgan.data import FolderFaces
from maskgan.data.folder import read_face, read_image, read_label_ids, read_rgb
from maskgan.data.layout import split_dirs
from maskgan.data.paired import PairedFolderDataset
from maskgan.errors import DataError, LabelError
from maskgan.labels import CLASS_IDS
from maskgan.photo import prepare_photo
from maskgan.widgets.faces import FaceBank
from maskgan.widgets.uploads import UploadController

SKIN, HAIR = CLASS_IDS["skin"], CLASS_IDS["hair"]
ORIENTATION = 0x0112

# How a viewer shows the stored pixels for each EXIF Orientation value (the EXIF 2.3 table: where the
# stored 0th row and 0th column appear; 1: top/left, 2: top/right, 3: bottom/right, 4: bottom/left,
# 5: left/top, 6: right/top, 7: right/bottom, 8: left/bottom).
SHOWN = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
         5: lambda a: a.swapaxes(0, 1), 6: lambda a: a.swapaxes(0, 1)[:, ::-1],
         7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: a.swapaxes(0, 1)[::-1]}


def _gradient16(w=48, h=40) -> np.ndarray:
    """A 16-bit grayscale picture using the whole range (dark left, bright right)."""
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def _save16(arr: np.ndarray, path):
    im = Image.fromarray(arr)
    assert im.mode == "I;16"
    im.save(path)
    assert Image.open(path).mode == "I;16", "a real 16-bit PNG"
    return path


def _eight(arr16: np.ndarray) -> np.ndarray:
    return np.round(arr16 / 257.0).astype(np.uint8)


def _rgb_of(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _blocks(w, h, seed=0) -> np.ndarray:
    """An asymmetric picture of flat 8x8 blocks (survives JPEG well enough to compare)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, ((h + 7) // 8, (w + 7) // 8, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), np.uint8))[:h, :w]


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def _png48(rgb16: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): signature, IHDR (16-bit, colour type 2), IDAT, IEND."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


# --- 16 bits -------------------------------------------------------------------------------------

def test_a_16_bit_grayscale_png_reads_like_its_8_bit_twin_not_white(tmp_path):
    arr = _gradient16()
    rgb = np.asarray(read_rgb(_save16(arr, tmp_path / "gray16.png")))
    assert rgb.dtype == np.uint8 and rgb.shape == (40, 48, 3)
    np.testing.assert_array_equal(rgb, _rgb_of(_eight(arr)))


def test_folder_faces_read_a_16_bit_image_like_its_8_bit_twin(tmp_path):
    arr = _gradient16(32, 32)
    writers = {"sixteen": lambda p: _save16(arr, p), "eight": lambda p: Image.fromarray(_eight(arr)).save(p)}
    for folder, write in writers.items():
        (tmp_path / folder).mkdir()
        write(tmp_path / folder / "face.png")
        Image.fromarray(np.full((32, 32), SKIN, np.uint8)).save(tmp_path / folder / "face_mask.png")
    sixteen, eight = FolderFaces(tmp_path / "sixteen", 32)[0]["image"], FolderFaces(tmp_path / "eight", 32)[0]["image"]
    assert abs(float(sixteen.mean()) - float(eight.mean())) < 0.01 < 0.5 < 1 - float(sixteen.mean())
    assert float((sixteen - eight).abs().max()) <= 2 / 127.5  # one 8-bit level of rounding at most


def test_a_48_bit_rgb_png_keeps_its_colours():
    rgb16 = np.zeros((4, 6, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32896, 257 * 7
    got = np.asarray(read_rgb(_png48(rgb16)))
    assert got.shape == (4, 6, 3)
    np.testing.assert_array_equal(got[0, 0], [255, 128, 7])


def test_a_big_endian_16_bit_tiff_is_scaled_too():
    arr = _gradient16(16, 8)
    im = Image.frombytes("I;16B", (16, 8), arr.astype(">u2").tobytes())
    buf = io.BytesIO()
    im.save(buf, format="TIFF")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I;16B"
    np.testing.assert_array_equal(np.asarray(read_rgb(buf.getvalue())), _rgb_of(_eight(arr)))


def test_the_upload_box_reads_a_16_bit_png_like_its_8_bit_twin():
    arr = _gradient16(32, 32)
    mask = _png_bytes(Image.fromarray(np.full((32, 32), SKIN, np.uint8)))
    faces = {}
    uploads = {"gray16.png": _png_bytes(Image.fromarray(arr)), "gray8.png": _png_bytes(Image.fromarray(_eight(arr)))}
    for name, data in uploads.items():
        blank = {"image": torch.zeros(3, 32, 32), "label": torch.zeros(32, 32, dtype=torch.long), "name": "x"}
        bank = FaceBank([blank])
        ctl = UploadController(bank)
        index = ctl.add(data, mask, image_name=name, mask_name="mask.png")
        assert index == 1, ctl.message.value
        faces[name] = bank[index]["image"]
    assert float((faces["gray16.png"] - faces["gray8.png"]).abs().max()) <= 2 / 127.5


def _prepared_folder(root, image_writer, mask_writer):
    images, masks = split_dirs(root, "train")
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    image_writer(images / "00000.png")
    mask_writer(masks / "00000.png")
    return root


def test_the_training_loader_reads_a_16_bit_image_like_its_8_bit_twin(tmp_path):
    arr = _gradient16(32, 32)
    mask = np.full((32, 32), SKIN, np.uint8)
    sixteen = _prepared_folder(tmp_path / "a", lambda p: _save16(arr, p), lambda p: Image.fromarray(mask).save(p))
    eight = _prepared_folder(tmp_path / "b", lambda p: Image.fromarray(_eight(arr)).save(p),
                             lambda p: Image.fromarray(mask).save(p))
    ds = PairedFolderDataset(sixteen)
    ds.validate(progress=False)
    assert float((ds[0]["image"] - PairedFolderDataset(eight)[0]["image"]).abs().max()) <= 2 / 127.5


def test_a_16_bit_mask_of_ids_is_read_as_ids_by_folder_faces_and_the_training_loader_alike(tmp_path):
    ids = np.zeros((32, 32), np.uint16)
    ids[8:24, 8:24] = HAIR
    ids[12:20, 12:20] = SKIN
    photo = _blocks(32, 32)
    (tmp_path / "f").mkdir()
    Image.fromarray(photo).save(tmp_path / "f" / "face.png")
    _save16(ids, tmp_path / "f" / "face_mask.png")
    root = _prepared_folder(tmp_path / "p", lambda p: Image.fromarray(photo).save(p), lambda p: _save16(ids, p))
    folder_label = FolderFaces(tmp_path / "f", 32)[0]["label"]
    loader_label = PairedFolderDataset(root)[0]["label"]
    np.testing.assert_array_equal(folder_label.numpy(), ids.astype(np.int64))
    np.testing.assert_array_equal(loader_label.numpy(), ids.astype(np.int64))


def test_a_16_bit_mask_with_a_value_above_18_is_named(tmp_path):
    ids = np.zeros((16, 16), np.uint16)
    ids[0, 0] = 1000
    path = _save16(ids, tmp_path / "m.png")
    with pytest.raises(LabelError, match=r"m\.png has label value\(s\) 1000; CelebAMask-HQ labels are 0\.\.18"):
        read_label_ids(path)


# --- EXIF orientation ------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_a_viewer_shows_it(orientation):
    stored = _blocks(40, 24)
    data = _png_bytes(Image.fromarray(stored), exif=_exif(orientation))
    assert Image.open(io.BytesIO(data)).getexif()[ORIENTATION] == orientation
    np.testing.assert_array_equal(np.asarray(read_rgb(data)), SHOWN[orientation](stored))


def _phone_jpeg(path, shown: np.ndarray):
    """A JPEG as a phone writes it: the sensor's pixels (landscape) with Orientation=6, so that
    viewers show ``shown`` (portrait)."""
    stored = np.rot90(shown, 1)  # Orientation 6: the viewer turns the stored pixels 90 degrees clockwise
    Image.fromarray(np.ascontiguousarray(stored)).save(path, quality=95, exif=_exif(6))
    with Image.open(path) as im:
        assert im.size == (shown.shape[0], shown.shape[1]) and im.getexif()[ORIENTATION] == 6
    return path


def _portrait_face(w=48, h=64):
    """A portrait picture with a bright square up and right (the 'face'), and the mask drawn on it as shown."""
    shown = np.full((h, w, 3), 30, np.uint8)
    shown[12:28, 24:40] = 230
    mask = np.zeros((h, w), np.uint8)
    mask[12:28, 24:40] = SKIN
    return shown, mask


def test_a_mask_drawn_on_a_phone_photo_as_shown_lines_up_in_folder_faces(tmp_path):
    shown, mask = _portrait_face()
    _phone_jpeg(tmp_path / "phone.jpg", shown)
    Image.fromarray(mask).save(tmp_path / "phone.png")  # drawn on the photo as displayed: portrait
    item = FolderFaces(tmp_path, 48)[0]  # before: refused, "must have the same aspect ratio"
    bright = item["image"].mean(0) > 0.5
    np.testing.assert_array_equal(bright.numpy(), (item["label"] == SKIN).numpy())


def test_a_phone_photo_uploaded_with_its_mask_lines_up(tmp_path):
    shown, mask = _portrait_face()
    data = _phone_jpeg(tmp_path / "phone.jpg", shown).read_bytes()
    item = read_face(data, _png_bytes(Image.fromarray(mask)), 48, "upload")
    np.testing.assert_array_equal((item["image"].mean(0) > 0.5).numpy(), (item["label"] == SKIN).numpy())


def test_a_phone_photo_without_a_mask_is_cropped_as_shown(tmp_path):
    class BrightIsSkin:
        def parse(self, images):
            return (images.mean(1) > 0.5).long() * SKIN

    shown, _ = _portrait_face()
    path = _phone_jpeg(tmp_path / "phone.jpg", shown)
    out = prepare_photo(path, BrightIsSkin(), 32, margin=0.0)
    assert out["box"] == (24, 12, 40, 28)  # in the pixels of the photo as shown (portrait, 48 x 64)


def test_an_exif_rotated_mask_is_turned_like_its_image(tmp_path):
    shown, mask = _portrait_face()
    _phone_jpeg(tmp_path / "a.jpg", shown)
    Image.fromarray(np.ascontiguousarray(np.rot90(mask, 1))).save(tmp_path / "a.png", exif=_exif(6))
    item = FolderFaces(tmp_path, 48)[0]
    np.testing.assert_array_equal((item["image"].mean(0) > 0.5).numpy(), (item["label"] == SKIN).numpy())


# --- alpha, palette, CMYK, 1-bit, float ---------------------------------------------------------------

def test_transparent_pixels_are_shown_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    rgba[2:, :, 3] = 0
    got = np.asarray(read_rgb(_png_bytes(Image.fromarray(rgba))))
    np.testing.assert_array_equal(got[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(got[3, 3], [255, 255, 255])
    la = Image.fromarray(np.stack([np.full((4, 4), 10, np.uint8), np.full((4, 4), 128, np.uint8)], -1))
    assert la.mode == "LA"
    np.testing.assert_array_equal(np.asarray(read_rgb(_png_bytes(la)))[0, 0], [132, 132, 132])  # 10 half over 255


def test_a_palette_png_with_a_transparent_colour_is_shown_over_white():
    im = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode=None).convert("P")
    im.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    data = _png_bytes(im, transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    got = np.asarray(read_rgb(data))
    np.testing.assert_array_equal(got[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(got[0, 1], [0, 255, 0])


def test_cmyk_jpeg_and_1_bit_png_are_converted_to_rgb():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buf, format="JPEG", quality=95)
    cmyk = np.asarray(read_rgb(buf.getvalue()))
    assert cmyk.shape == (16, 16, 3) and cmyk[8, 8, 0] > 200 and cmyk[8, 8, 1] < 60  # red stays red
    one = Image.new("1", (4, 4), 1)
    np.testing.assert_array_equal(np.asarray(read_rgb(_png_bytes(one)))[0, 0], [255, 255, 255])


def test_a_floating_point_image_is_refused_with_what_to_do():
    buf = io.BytesIO()
    Image.fromarray(np.ones((4, 4), np.float32)).save(buf, format="TIFF")
    with pytest.raises(DataError, match=r"mode 'F' image \(floating-point values\), which the kit does not read; "
                                        r"save it as an 8- or 16-bit"):
        read_rgb(buf.getvalue(), "scan.tif")


def test_a_folder_given_as_an_image_is_called_a_folder(tmp_path):
    with pytest.raises(DataError, match="is a folder; expected a JPEG or PNG file"):
        read_rgb(tmp_path)


# --- resampling (issue 24, item 8): LANCZOS for the kit's models, BICUBIC as the authors' demo ----------

def test_folder_faces_resample_with_lanczos_by_default_and_bicubic_when_asked(tmp_path):
    photo = _blocks(96, 96)
    Image.fromarray(photo).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(tmp_path / "a_mask.png")

    def resized(f):
        return read_image(tmp_path / "a.png", 40, resample=f)
    expect = {f: np.asarray(Image.fromarray(photo).resize((40, 40), m), np.float32) / 127.5 - 1
              for f, m in (("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC))}
    assert torch.equal(FolderFaces(tmp_path, 40)[0]["image"], resized("lanczos"))
    assert torch.equal(FolderFaces(tmp_path, 40, resample="bicubic")[0]["image"], resized("bicubic"))
    for f in expect:
        np.testing.assert_allclose(resized(f).permute(1, 2, 0).numpy(), expect[f], atol=1e-6)
    assert not torch.equal(resized("lanczos"), resized("bicubic"))
    with pytest.raises(DataError, match="resample must be one of lanczos, bicubic, got 'nearest'"):
        FolderFaces(tmp_path, 40, resample="nearest")


def test_an_editor_of_the_kits_own_run_reads_faces_with_lanczos(tmp_path):
    from maskgan.config import Config
    from maskgan.editing import Editor
    from maskgan.train import train
    train("dmn", Config.preset("smoke").with_overrides({"train.dmn_steps": 1}), tmp_path / "run", progress=False)
    assert Editor.from_run(tmp_path / "run").resample == "lanczos"


def test_bytes_that_are_no_picture_are_named_without_a_python_repr():
    with pytest.raises(DataError) as e:
        read_rgb(b"garbage", "holiday.jpg")
    assert str(e.value) == ("holiday.jpg cannot be read as an image (not a picture format Pillow reads); expected a "
                            "JPEG or PNG file")  # before: "cannot identify image file <_io.BytesIO object at 0x...>"

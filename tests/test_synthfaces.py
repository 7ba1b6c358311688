"""SynthFaces: procedural faces with the 19 CelebAMask-HQ classes and ground-truth edits."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from maskgan.data import synthfaces as sf
from maskgan.data.layout import SPLITS
from maskgan.data.tensors import image_to_tensor
from maskgan.labels import CLASS_IDS, CLASS_NAMES, NUM_CLASSES, flip_labels


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return torch.nn.functional.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy() > 0


@pytest.fixture(scope="module")
def freqs():
    return sf.class_frequencies(n=1000, size=64, split="train")


# --- edits -------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sf.EDIT_FAMILIES)
def test_edit_changes_pixels_only_where_its_classes_are_or_were(family):
    for index in range(3):
        pair = sf.edit_pair(family, "train", index, size=64)
        outside = ~dilate(sf.edit_region(pair).numpy(), 2)
        assert outside.any() or family == "move_scale"
        moved = (pair["image"] != pair["edited_image"]).any(0).numpy() & outside
        relabelled = (pair["label"] != pair["edited_label"]).numpy() & outside
        assert not moved.any(), f"{family}, face {index}: {moved.sum()} pixels changed outside the edit"
        assert not relabelled.any(), f"{family}, face {index}: {relabelled.sum()} labels changed outside the edit"


@pytest.mark.parametrize("family", sf.EDIT_FAMILIES)
def test_edit_always_changes_the_label_map_and_the_image(family):
    for index in range(3):
        pair = sf.edit_pair(family, "val", index, size=64)
        assert (pair["label"] != pair["edited_label"]).sum() >= 3, f"{family} face {index}"
        assert not torch.equal(pair["image"], pair["edited_image"])


def test_edit_pair_shares_style_and_seed_and_is_deterministic():
    a = sf.edit_pair("hairstyle", "test", 5, size=48)
    b = sf.edit_pair("hairstyle", "test", 5, size=48)
    assert set(a) == {"image", "label", "edited_image", "edited_label", "name", "layout", "edited_layout",
                      "style", "seed", "family"}
    # the kit's one sample type: the keys and tensors of a dataset item
    assert a["image"].dtype == torch.float32 and a["image"].shape == (3, 48, 48) and a["label"].dtype == torch.int64
    assert torch.equal(a["edited_image"], b["edited_image"]) and a["edited_layout"] == b["edited_layout"]
    image, labels = sf.render(a["edited_layout"], a["style"], 48, a["seed"])
    assert torch.equal(image_to_tensor(image), a["edited_image"]) and np.array_equal(labels, a["edited_label"].numpy())


def test_a_label_only_render_equals_the_label_map_of_the_full_render():
    ds = sf.SynthFacesDataset("train", size=64, length=8)
    for i in range(8):
        assert torch.equal(ds.label(i), sf.SynthFacesDataset("train", size=64, length=8, flip=False)[i]["label"])


def test_edit_precondition_is_established_on_the_original():
    rng = np.random.default_rng(0)
    layout, _, _ = sf.face_params("train", 0)
    bare = layout.replace(glasses=False, hat=False, mouth_open=0.0)
    original, edited = sf.apply_edit(bare, "remove_glasses", rng)
    assert original.glasses and not edited.glasses
    original, edited = sf.apply_edit(bare, "remove_hat", rng)
    assert original.hat and not edited.hat
    original, edited = sf.apply_edit(bare, "close_mouth", rng)
    assert original.mouth_open > 0 and edited.mouth_open == 0


def test_unknown_edit_family_error_lists_the_valid_families():
    with pytest.raises(ValueError, match="smile.*move_scale"):
        sf.edit_pair("frown", "train", 0, size=32)
    layout, _, _ = sf.face_params("train", 0)
    with pytest.raises(ValueError, match="valid families"):
        sf.apply_edit(layout, "frown", np.random.default_rng(0))


def test_eyes_keep_their_labels_behind_eyeglass_lenses():
    """CelebAMask-HQ merges eye_g before l_eye / r_eye, so eyes show through the lenses."""
    layout, style, seed = sf.face_params("train", 2)
    layout = layout.replace(eye_open=0.9, glasses=False)
    _, bare = sf.render(layout, style, 128, seed)
    _, with_glasses = sf.render(layout.replace(glasses=True), style, 128, seed)
    for name in ("l_eye", "r_eye"):
        eye = bare == CLASS_IDS[name]
        assert eye.sum() > 10
        assert np.array_equal(eye, with_glasses == CLASS_IDS[name])
    assert (with_glasses == CLASS_IDS["eye_g"]).sum() > 0


# --- determinism, splits, sizes ----------------------------------------------------------------

def test_same_parameters_render_identical_faces():
    a = sf.render_face("train", 7, 64)
    b = sf.render_face("train", 7, 64)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].dtype == np.uint8 and a[0].shape == (64, 64, 3)
    assert a[1].dtype == np.uint8 and a[1].shape == (64, 64) and a[1].max() < NUM_CLASSES


def test_different_index_renders_a_different_face():
    a_img, a_lab = sf.render_face("train", 7, 64)
    b_img, b_lab = sf.render_face("train", 8, 64)
    assert not np.array_equal(a_lab, b_lab)
    assert np.abs(a_img.astype(int) - b_img).mean() > 5


def test_seed_changes_texture_but_not_labels():
    layout, style, seed = sf.face_params("val", 3)
    a_img, a_lab = sf.render(layout, style, 64, seed)
    b_img, b_lab = sf.render(layout, style, 64, seed + 1)
    assert np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, b_img)


def test_splits_draw_disjoint_faces():
    params = {split: [sf.face_params(split, i) for i in range(200)] for split in SPLITS}
    seeds = {split: {seed for _, _, seed in p} for split, p in params.items()}
    layouts = {split: {json.dumps(lay.to_dict(), sort_keys=True) for lay, _, _ in p} for split, p in params.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not seeds[a] & seeds[b]
        assert not layouts[a] & layouts[b]
    assert sf.face_params("train", 3, base_seed=1) != sf.face_params("train", 3, base_seed=0)


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="unknown split 'dev'.*train, val, test"):
        sf.face_params("dev", 0)


def test_sizes_32_and_1024_render():
    image, labels = sf.render_face("test", 1, 32)
    assert image.shape == (32, 32, 3) and labels.shape == (32, 32)
    image, labels = sf.render_face("test", 1, 1024)
    assert image.shape == (1024, 1024, 3) and labels.shape == (1024, 1024)
    assert {CLASS_IDS["skin"], CLASS_IDS["l_eye"], CLASS_IDS["nose"]} <= set(np.unique(labels).tolist())


@pytest.mark.parametrize("size", [31, 2000, 64.0])
def test_size_outside_32_to_1024_raises(size):
    with pytest.raises(ValueError, match="32 to 1024 pixels; got size"):
        sf.render_face("train", 0, size)


# --- class statistics --------------------------------------------------------------------------

def test_all_19_labels_appear_across_1000_faces(freqs):
    missing = [name for name in CLASS_NAMES if freqs[name] == 0]
    assert not missing


def test_class_frequencies_follow_celebamask_expectations(freqs):
    for name in ("background", "skin", "neck", "cloth"):
        assert freqs[name] >= 0.97, name
    assert freqs["hair"] >= 0.85  # bald faces are the exception
    for name in ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip"):
        assert freqs[name] >= 0.85, name
    for name in ("l_ear", "r_ear"):
        assert 0.4 <= freqs[name] <= 0.95, name
    for name in ("eye_g", "hat", "ear_r", "neck_l", "mouth"):
        assert 0.03 <= freqs[name] <= 0.45, name
    shares = sum(freqs[f"{name}_share"] for name in CLASS_NAMES)
    assert shares == pytest.approx(1.0)


# --- torch Dataset -----------------------------------------------------------------------------

def test_dataset_returns_the_folder_dataset_item_format():
    ds = sf.SynthFacesDataset("val", size=48, length=5)
    assert len(ds) == 5
    item = ds[3]
    assert set(item) == {"image", "label", "name"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 48, 48)
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (48, 48)
    assert 0 <= item["label"].min() and item["label"].max() < NUM_CLASSES
    assert item["name"] == "val_000003"
    image, labels = sf.render_face("val", 3, 48)
    assert torch.equal(item["label"], torch.from_numpy(labels.astype(np.int64)))
    with pytest.raises(IndexError, match="5 items"):
        ds[5]


def test_dataset_flip_mirrors_the_image_and_swaps_left_right_labels():
    plain = sf.SynthFacesDataset("train", size=64, length=40)
    flipping = sf.SynthFacesDataset("train", size=64, length=40, flip=True)
    flipped = [i for i in range(40) if flipping.flipped(i)]
    assert 8 <= len(flipped) <= 32  # p = 0.5
    i = flipped[0]
    a, b = plain[i], flipping[i]
    assert torch.equal(b["image"], a["image"].flip(-1))
    assert torch.equal(b["label"], flip_labels(a["label"]))
    l_eye, r_eye = CLASS_IDS["l_eye"], CLASS_IDS["r_eye"]
    assert torch.equal(b["label"] == l_eye, (a["label"] == r_eye).flip(-1))
    assert (b["label"] == l_eye).any()
    assert torch.equal(flipping[i]["label"], b["label"])  # deterministic per index
    j = next(k for k in range(40) if k not in flipped)
    assert torch.equal(flipping[j]["image"], plain[j]["image"])


# --- materialise -------------------------------------------------------------------------------

COUNTS = {"train": 3, "val": 2, "test": 1}


def test_materialise_writes_the_folder_layout_and_meta(tmp_path):
    result = sf.materialise(tmp_path, COUNTS, size=32, base_seed=4, progress=False)
    assert result == {"written": COUNTS, "skipped": {s: 0 for s in SPLITS}}
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["dataset"] == "synthfaces" and meta["size"] == 32 and meta["base_seed"] == 4
    assert meta["counts"] == COUNTS and meta["complete"] is True
    for split, n in COUNTS.items():
        names = sorted(p.stem for p in (tmp_path / split / "images").iterdir())
        assert names == [f"{split}_{i:06d}" for i in range(n)]
        assert sorted(p.stem for p in (tmp_path / split / "masks").iterdir()) == names
    with Image.open(tmp_path / "train/masks/train_000002.png") as m:
        assert m.mode == "L" and m.size == (32, 32)
        mask = np.asarray(m)
    with Image.open(tmp_path / "train/images/train_000002.png") as im:
        assert im.mode == "RGB"
        image = np.asarray(im)
    params = json.loads((tmp_path / "train/params/train_000002.json").read_text())
    again = sf.render(sf.Layout.from_dict(params["layout"]), sf.Style.from_dict(params["style"]), 32, params["seed"])
    assert np.array_equal(again[0], image) and np.array_equal(again[1], mask)


def test_materialise_second_run_skips_everything(tmp_path):
    sf.materialise(tmp_path, COUNTS, size=32, progress=False)
    before = (tmp_path / "val/images/val_000001.png").stat().st_mtime_ns
    result = sf.materialise(tmp_path, COUNTS, size=32, progress=False)
    assert result == {"written": {s: 0 for s in SPLITS}, "skipped": COUNTS}
    assert (tmp_path / "val/images/val_000001.png").stat().st_mtime_ns == before


def test_materialise_removes_the_temporary_files_a_killed_run_left(tmp_path):
    sf.materialise(tmp_path, {"train": 1, "val": 1, "test": 1}, size=32, progress=False)
    # what a kill inside an atomic write leaves
    leftovers = [tmp_path / "train/images/.train_000001.png.q8w7e6r5.tmp",
                 tmp_path / "train/masks/.train_000001.png.a1.tmp", tmp_path / "train/params/.train_000001.json.zz9.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    sf.materialise(tmp_path, {"train": 2, "val": 1, "test": 1}, size=32, progress=False)
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in (tmp_path / "train/images").iterdir()) == ["train_000000.png", "train_000001.png"]


def test_materialise_recreates_a_deleted_file(tmp_path):
    sf.materialise(tmp_path, COUNTS, size=32, progress=False)
    mask = tmp_path / "train/masks/train_000001.png"
    original = mask.read_bytes()
    mask.unlink()
    result = sf.materialise(tmp_path, COUNTS, size=32, progress=False)
    assert result["written"] == {"train": 1, "val": 0, "test": 0}
    assert mask.read_bytes() == original


def test_materialise_refuses_a_folder_of_another_size(tmp_path):
    sf.materialise(tmp_path, {"train": 1}, size=32, progress=False)
    with pytest.raises(ValueError, match="size = 32 but this run asks for 48"):
        sf.materialise(tmp_path, {"train": 1}, size=48, progress=False)


def test_materialise_with_a_process_pool_writes_the_same_faces(tmp_path):
    counts = {"train": 20, "val": 0, "test": 0}
    sf.materialise(tmp_path / "one", counts, size=32, workers=1, progress=False)
    sf.materialise(tmp_path / "two", counts, size=32, workers=2, progress=False)
    for i in (0, 19):
        name = f"train/masks/train_{i:06d}.png"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_materialised_faces_load_identically_through_the_folder_dataset(tmp_path):
    paired = pytest.importorskip("maskgan.data.paired")
    sf.materialise(tmp_path, {"val": 2}, size=32, progress=False)
    folder = paired.PairedFolderDataset(tmp_path, "val")
    live = sf.SynthFacesDataset("val", size=32, length=2)
    for i in range(2):
        a, b = folder[i], live[i]
        assert a["name"] == b["name"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


# --- parameters --------------------------------------------------------------------------------

def test_layout_and_style_round_trip_through_json():
    layout, style, _ = sf.face_params("test", 11)
    layout2 = sf.Layout.from_dict(json.loads(json.dumps(layout.to_dict())))
    style2 = sf.Style.from_dict(json.loads(json.dumps(style.to_dict())))
    assert layout2 == layout and style2 == style


def test_from_dict_names_missing_unknown_and_bad_fields():
    d = sf.Layout.from_dict(sf.face_params("test", 0)[0].to_dict()).to_dict()
    del d["cx"]
    d["beard"] = 1.0
    with pytest.raises(ValueError, match=r"missing keys \['cx'\], unknown keys \['beard'\]"):
        sf.Layout.from_dict(d)
    d = sf.face_params("test", 0)[0].to_dict()
    d["hairstyle"] = "mohawk"
    with pytest.raises(ValueError, match="hairstyle is 'mohawk'; expected one of short, long, bangs, bald"):
        sf.Layout.from_dict(d)


def test_bench_render_reports_faces_per_second():
    assert sf.bench_render(size=32, n=3) > 0

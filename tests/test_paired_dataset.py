"""The paired folder dataset (maskgan.data.paired) over the prepared layout (maskgan.data.layout)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from celebamask_fixture import make_celebamask_archive
from maskgan.data.celebamask import prepare_celebamask
from maskgan.data.paired import PairedFolderDataset
from maskgan.labels import CLASS_IDS, LabelError

S = 16
L_EYE, R_EYE, SKIN = CLASS_IDS["l_eye"], CLASS_IDS["r_eye"], CLASS_IDS["skin"]


def write_pair(root: Path, name: str, image: np.ndarray, label: np.ndarray, split: str = "train") -> None:
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / split / "images" / f"{name}.png")
    Image.fromarray(label, mode="L").save(root / split / "masks" / f"{name}.png")


def eye_face() -> tuple[np.ndarray, np.ndarray]:
    """Skin everywhere, l_eye only in column 2 and r_eye only in column 12; a white pixel at (0, 0)."""
    label = np.full((S, S), SKIN, np.uint8)
    label[5:8, 2], label[5:8, 12] = L_EYE, R_EYE
    image = np.zeros((S, S, 3), np.uint8)
    image[0, 0] = 255
    return image, label


@pytest.fixture
def folder(tmp_path):
    image, label = eye_face()
    for k in range(3):
        write_pair(tmp_path, f"{k:05d}", image, label)
    return tmp_path


def test_items_are_a_float_image_in_minus_one_one_an_int64_label_and_a_name(folder):
    item = PairedFolderDataset(folder)[0]
    assert set(item) == {"image", "label", "name"} and item["name"] == "00000"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, S, S)
    assert item["image"].min() == -1.0 and item["image"].max() == 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (S, S)
    np.testing.assert_array_equal(item["label"].numpy(), eye_face()[1])


def test_flip_mirrors_the_image_and_swaps_left_and_right_eyes(folder):
    item = PairedFolderDataset(folder, flip=1.0)[0]
    label = item["label"]
    assert (label[5:8, S - 1 - 2] == R_EYE).all() and (label[5:8, S - 1 - 12] == L_EYE).all()
    assert (label == L_EYE).sum() == 3 and (label == R_EYE).sum() == 3
    assert item["image"][:, 0, S - 1].tolist() == [1.0, 1.0, 1.0] and item["image"][0, 0, 0] == -1.0


def test_flip_true_flips_some_draws_and_not_others(folder):
    torch.manual_seed(0)
    ds = PairedFolderDataset(folder, flip=True)
    flipped = [bool(ds[0]["label"][6, S - 1 - 2] == R_EYE) for _ in range(40)]
    assert 5 < sum(flipped) < 35


def test_unmatched_images_and_masks_are_listed_in_the_error(folder):
    (folder / "train" / "images" / "00001.png").unlink()
    image, label = eye_face()
    Image.fromarray(image).save(folder / "train" / "images" / "00007.png")
    with pytest.raises(ValueError, match=r"images without a mask: 00007; masks without an image: 00001"):
        PairedFolderDataset(folder)


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_split_tells_the_user_how_to_create_it(tmp_path, state):
    if state == "empty":
        (tmp_path / "val" / "images").mkdir(parents=True)
        (tmp_path / "val" / "masks").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="prepare_celebamask.py.*SynthFaces"):
        PairedFolderDataset(tmp_path, split="val")


def test_label_value_23_names_the_file_and_the_value(folder):
    label = eye_face()[1].copy()
    label[0, 0] = 23
    Image.fromarray(label, mode="L").save(folder / "train" / "masks" / "00002.png")
    with pytest.raises(LabelError, match=r"masks/00002\.png has label value\(s\) 23; CelebAMask-HQ labels are 0\.\.18"):
        PairedFolderDataset(folder)[2]


def test_an_image_and_mask_of_different_sizes_are_refused(folder):
    Image.new("RGB", (S * 2, S * 2)).save(folder / "train" / "images" / "00001.png")
    with pytest.raises(ValueError, match=r"00001\.png is 32x32 but .*masks/00001\.png is 16x16"):
        PairedFolderDataset(folder)[1]


def test_a_colour_mask_is_refused_with_a_hint(folder):
    Image.new("RGB", (S, S)).save(folder / "train" / "masks" / "00001.png")
    with pytest.raises(ValueError, match="mode 'RGB'.*single-channel label map"):
        PairedFolderDataset(folder)[1]


def test_stray_files_in_a_split_are_an_error_not_skipped(folder):
    (folder / "train" / "images" / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="notes.txt"):
        PairedFolderDataset(folder)


def test_size_resizes_on_the_fly_without_inventing_label_ids(folder):
    item = PairedFolderDataset(folder, size=8)[0]
    assert item["image"].shape == (3, 8, 8) and item["label"].shape == (8, 8)
    assert set(item["label"].unique().tolist()) <= {SKIN, L_EYE, R_EYE}


def test_max_items_keeps_the_first_names(folder):
    ds = PairedFolderDataset(folder, max_items=2)
    assert len(ds) == 2 and [ds[i]["name"] for i in range(2)] == ["00000", "00001"]


def test_batches_through_a_dataloader(folder):
    batch = next(iter(torch.utils.data.DataLoader(PairedFolderDataset(folder), batch_size=3)))
    assert batch["image"].shape == (3, 3, S, S) and batch["label"].shape == (3, S, S)
    assert batch["name"] == ["00000", "00001", "00002"]


def test_reads_the_output_of_celebamask_preparation(tmp_path):
    src = make_celebamask_archive(tmp_path / "src", n=6, image_size=32, mask_size=S)
    result = prepare_celebamask(src, tmp_path / "out", size=S, workers=1, part_size=S, progress=False)
    for split, n in result.counts.items():
        ds = PairedFolderDataset(tmp_path / "out", split=split)
        assert len(ds) == n and ds.meta["dataset"] == "celebamask-hq"
        for item in ds:
            mask = np.array(Image.open(tmp_path / "out" / split / "masks" / f"{item['name']}.png"))
            np.testing.assert_array_equal(item["label"].numpy(), mask)

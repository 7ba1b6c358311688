"""The 19-class label system (DESIGN.md section 3)."""
import numpy as np
import pytest
import torch

from maskgan import labels
from maskgan.labels import CLASS_IDS, NUM_CLASSES, LabelError


def test_there_are_19_classes_with_background_first():
    assert NUM_CLASSES == 19
    assert labels.CLASS_NAMES[0] == "background"
    assert len(labels.PALETTE) == 19 and len(set(map(tuple, labels.PALETTE))) == 19


def test_ids_follow_the_official_merge_order():
    expected = ["skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
                "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
    assert [labels.CLASS_NAMES[i] for i in range(1, 19)] == expected
    assert CLASS_IDS["hair"] == 13 and CLASS_IDS["cloth"] == 18


def test_palette_matches_the_celebamask_colours():
    assert tuple(labels.PALETTE[CLASS_IDS["skin"]]) == (204, 0, 0)
    assert tuple(labels.PALETTE[CLASS_IDS["hair"]]) == (0, 0, 204)
    assert tuple(labels.PALETTE[CLASS_IDS["cloth"]]) == (0, 204, 0)


def test_colorize_maps_each_id_to_its_palette_colour():
    lm = np.arange(19, dtype=np.uint8).reshape(1, 19)
    rgb = labels.colorize(lm)
    assert rgb.shape == (1, 19, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], labels.PALETTE)


def test_one_hot_of_a_batch_puts_classes_on_axis_one():
    lm = torch.tensor([[[0, 1], [18, 5]]])
    oh = labels.one_hot(lm)
    assert oh.shape == (1, 19, 2, 2) and oh.dtype == torch.float32
    assert torch.equal(oh.argmax(1), lm)
    assert torch.all(oh.sum(1) == 1)


def test_one_hot_of_a_single_map_and_numpy_input():
    oh = labels.one_hot(np.array([[3, 4]], dtype=np.uint8))
    assert oh.shape == (19, 1, 2) and oh[3, 0, 0] == 1 and oh[4, 0, 1] == 1


def test_one_hot_rejects_label_23_and_names_it():
    with pytest.raises(LabelError, match=r"23.*0\.\.18"):
        labels.one_hot(torch.tensor([[0, 23], [1, 2]]))


def test_validate_names_the_source_file_and_all_bad_values():
    with pytest.raises(LabelError, match=r"masks/00012.png has label value\(s\) 19, 255"):
        labels.validate_label_map(np.array([[0, 255, 19]]), source="masks/00012.png")


def test_negative_labels_are_rejected():
    with pytest.raises(LabelError, match="-1"):
        labels.validate_label_map(torch.tensor([[-1, 0]]))


def test_flip_swaps_left_and_right_classes():
    l_eye, r_eye = CLASS_IDS["l_eye"], CLASS_IDS["r_eye"]
    lm = np.array([[l_eye, 0, CLASS_IDS["nose"]]], dtype=np.uint8)
    flipped = labels.flip_labels(lm)
    np.testing.assert_array_equal(flipped, [[CLASS_IDS["nose"], 0, r_eye]])
    assert flipped.dtype == np.uint8


def test_flip_of_a_tensor_matches_numpy_and_is_an_involution():
    rng = np.random.default_rng(0)
    lm = rng.integers(0, 19, size=(2, 8, 8)).astype(np.int64)
    flipped = labels.flip_labels(torch.from_numpy(lm))
    np.testing.assert_array_equal(flipped.numpy(), labels.flip_labels(lm))
    assert torch.equal(labels.flip_labels(flipped), torch.from_numpy(lm))


def test_label_of_unknown_name_lists_the_valid_names():
    with pytest.raises(KeyError, match="skin"):
        labels.label_of("beard")

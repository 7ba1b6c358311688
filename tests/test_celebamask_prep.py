"""CelebAMask-HQ preparation (maskgan.data.celebamask, data_prep/prepare_celebamask.py).

Runs on a tiny archive in the official layout (tests/celebamask_fixture.py): 10 faces, photos
64x64, part masks 32x32.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from celebamask_fixture import fixture_indices, make_celebamask_archive
from maskgan.data.celebamask import (
    MappingRow, PreparationError, celeba_split, merge_part_masks, prepare_celebamask, read_part_mask)

N, PART = 10, 32
REPO = Path(__file__).resolve().parents[1]
# Written out here on purpose (not imported): the order of the authors' g_mask.py.
ORDER = ["skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
         "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]


def reference_merge(src: Path, idx: int, order=ORDER) -> np.ndarray:
    """Independent merge: paint each present part, in order, with id = position + 1."""
    out = np.zeros((PART, PART), dtype=np.uint8)
    for k, part in enumerate(order):
        f = src / "CelebAMask-HQ-mask-anno" / str(idx // 2000) / f"{idx:05d}_{part}.png"
        if f.exists():
            a = np.array(Image.open(f).convert("L"))
            out[a > 0] = ORDER.index(part) + 1
    return out


def find_output(out: Path, idx: int, kind: str) -> Path:
    hits = list(out.glob(f"*/{kind}/{idx:05d}.png"))
    assert len(hits) == 1, f"face {idx}: expected one {kind} output, found {hits}"
    return hits[0]


def prepare(src, out, **kw):
    kw = {"size": PART, "workers": 1, "part_size": PART, "progress": False, **kw}
    return prepare_celebamask(src, out, **kw)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_celebamask_archive(tmp_path_factory.mktemp("archive"), n=N, image_size=64, mask_size=PART)


@pytest.fixture(scope="module")
def prepared(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return out, prepare(archive, out)


@pytest.fixture
def own_archive(archive, tmp_path):
    """A private copy of the archive that a test may damage."""
    return Path(shutil.copytree(archive, tmp_path / "archive"))


# --- merge -----------------------------------------------------------------------------------

def test_prepared_masks_equal_an_independent_merge_in_the_official_order(archive, prepared):
    out, _ = prepared
    for idx in fixture_indices(N):
        expected = reference_merge(archive, idx)
        # The fixture's parts overlap, so a different order would give a different map.
        assert not np.array_equal(expected, reference_merge(archive, idx, order=ORDER[::-1]))
        got = Image.open(find_output(out, idx, "masks"))
        assert got.mode == "L"
        np.testing.assert_array_equal(np.array(got), expected)


def test_merge_part_masks_paints_later_parts_over_earlier_whatever_the_dict_order():
    skin = np.ones((2, 2), bool)
    hair = np.array([[1, 0], [0, 0]], bool)
    merged = merge_part_masks({"hair": hair, "skin": skin})
    np.testing.assert_array_equal(merged, [[13, 1], [1, 1]])


def test_rgb_and_mode_1_part_masks_read_as_the_same_binary_mask(archive):
    folder = archive / "CelebAMask-HQ-mask-anno" / "0"
    for part, mode in (("nose", "RGB"), ("hair", "1"), ("skin", "L")):
        path = folder / f"00000_{part}.png"
        assert Image.open(path).mode == mode
        mask = read_part_mask(path, PART)
        assert mask.dtype == bool and mask.any() and not mask.all()
        np.testing.assert_array_equal(mask, np.array(Image.open(path).convert("L")) > 0)


def test_images_and_masks_are_resized_to_the_chosen_size(archive, tmp_path):
    prepare(archive, tmp_path, size=16)
    image, mask = Image.open(find_output(tmp_path, 4, "images")), Image.open(find_output(tmp_path, 4, "masks"))
    assert image.size == mask.size == (16, 16) and image.mode == "RGB"
    nearest = Image.fromarray(reference_merge(archive, 4)).resize((16, 16), Image.NEAREST)
    np.testing.assert_array_equal(np.array(mask), np.array(nearest))


# --- split -----------------------------------------------------------------------------------

@pytest.mark.parametrize("file_number, split", [
    (1, "train"), (162770, "train"), (162771, "val"), (182637, "val"), (182638, "test"), (202599, "test")])
def test_celeba_split_uses_the_1_based_official_partition(file_number, split):
    assert celeba_split(file_number) == split


@pytest.mark.parametrize("orig_idx, split", [(162769, "train"), (162770, "val"), (182636, "val"), (182637, "test")])
def test_mapping_rows_are_split_by_orig_idx_plus_one(orig_idx, split):
    assert MappingRow(0, orig_idx, f"{orig_idx + 1:06d}.jpg").split == split


def test_faces_land_in_their_split_folder_on_both_sides_of_both_boundaries(prepared):
    out, _ = prepared
    # Faces 0..3 have orig_idx 162769, 162770, 182636, 182637 (fixture BOUNDARY_ORIG_IDX).
    for idx, split in [(0, "train"), (1, "val"), (2, "val"), (3, "test")]:
        assert find_output(out, idx, "images").parts[-3] == split
        assert find_output(out, idx, "masks").parts[-3] == split


def test_counts_per_split_are_returned_and_written_to_meta_json(prepared):
    out, result = prepared
    # orig_idx of faces 4..9: 119613 train, 170000 val, 190000 test, 0 train, 202598 test, 5000 train.
    assert result.counts == {"train": 4, "val": 3, "test": 3}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["dataset"] == "celebamask-hq" and meta["size"] == PART
    assert meta["counts"] == result.counts and "orig_idx + 1" in meta["split_rule"]
    for split, n in result.counts.items():
        assert len(list((out / split / "images").glob("*.png"))) == n


def test_report_is_written_even_when_nothing_went_wrong(prepared):
    out, result = prepared
    report = json.loads((out / "prep_report.json").read_text())
    assert report["problems"] == [] and report["written"] == N and result.skipped == 0


def test_limit_prepares_only_the_first_n_faces(archive, tmp_path):
    result = prepare(archive, tmp_path, limit=3)
    assert result.written == 3
    assert sorted(p.stem for p in tmp_path.glob("*/masks/*.png")) == ["00000", "00001", "00002"]


def test_parallel_workers_write_the_same_files_as_one_worker(archive, prepared, tmp_path):
    out, _ = prepared
    result = prepare(archive, tmp_path, workers=2)
    assert result.written == N
    for f in out.glob("*/*/*.png"):
        assert (tmp_path / f.relative_to(out)).read_bytes() == f.read_bytes()


# --- resume ----------------------------------------------------------------------------------

def test_a_second_run_skips_every_finished_face(archive, tmp_path):
    prepare(archive, tmp_path)
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/*/*.png")}
    again = prepare(archive, tmp_path)
    assert (again.written, again.reused) == (0, N)
    assert {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/*/*.png")} == stamps


def test_deleting_one_output_recreates_only_that_face(archive, tmp_path):
    prepare(archive, tmp_path)
    victim, sibling = find_output(tmp_path, 5, "images"), find_output(tmp_path, 5, "masks")
    before = victim.read_bytes()
    others = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/*/*.png") if f not in (victim, sibling)}
    victim.unlink()
    again = prepare(archive, tmp_path)
    assert (again.written, again.reused) == (1, N - 1)
    assert victim.read_bytes() == before  # the face is redone as a unit (image and mask) ...
    assert {f: f.stat().st_mtime_ns for f in others} == others  # ... and no other face is touched


def test_a_folder_prepared_at_another_size_is_refused(archive, tmp_path):
    prepare(archive, tmp_path, limit=1)
    with pytest.raises(ValueError, match="size 32"):
        prepare(archive, tmp_path, size=16, limit=1)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["CelebA-HQ-to-CelebA-mapping.txt", "CelebA-HQ-img", "CelebAMask-HQ-mask-anno"])
def test_a_missing_archive_entry_raises_naming_the_path(own_archive, tmp_path, missing):
    target = own_archive / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(FileNotFoundError, match=str(target)):
        prepare(own_archive, tmp_path / "out")


def run_expecting_problems(src, out, **kw):
    """Run with on_error='raise', check the error message, return the report."""
    with pytest.raises(PreparationError) as err:
        prepare(src, out, **kw)
    assert str(out / "prep_report.json") in str(err.value)
    return json.loads((out / "prep_report.json").read_text())


def test_a_corrupt_part_mask_is_reported_and_the_run_raises_at_the_end(own_archive, tmp_path):
    bad = own_archive / "CelebAMask-HQ-mask-anno" / "0" / "00004_skin.png"
    bad.write_bytes(b"\x89PNG not really")
    report = run_expecting_problems(own_archive, tmp_path)
    assert [(p["kind"], p["file"]) for p in report["problems"]] == [("corrupt", str(bad))]
    assert report["written"] == N - 1 and report["skipped"] == 1  # the other faces are still prepared


def test_a_truncated_photo_is_reported(own_archive, tmp_path):
    bad = own_archive / "CelebA-HQ-img" / "6.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    report = run_expecting_problems(own_archive, tmp_path)
    assert [(p["kind"], p["file"], p["idx"]) for p in report["problems"]] == [("corrupt", str(bad), 6)]


def test_a_part_mask_of_the_wrong_size_is_reported_with_both_sizes(own_archive, tmp_path):
    bad = own_archive / "CelebAMask-HQ-mask-anno" / "0" / "00002_nose.png"
    Image.new("L", (20, 32)).save(bad)
    (problem,) = run_expecting_problems(own_archive, tmp_path)["problems"]
    assert problem["kind"] == "wrong_size" and "20x32" in problem["message"] and "32x32" in problem["message"]


def test_a_mapping_row_that_does_not_parse_is_reported_with_its_line(own_archive, tmp_path):
    mapping = own_archive / "CelebA-HQ-to-CelebA-mapping.txt"
    lines = mapping.read_text().splitlines()
    lines[3] = lines[3].replace(".jpg", ".png")  # idx 2
    mapping.write_text("\n".join(lines) + "\n")
    (problem,) = run_expecting_problems(own_archive, tmp_path)["problems"]
    assert problem["kind"] == "bad_mapping_row" and "line 4" in problem["message"]


def test_a_duplicated_idx_in_the_mapping_is_reported(own_archive, tmp_path):
    mapping = own_archive / "CelebA-HQ-to-CelebA-mapping.txt"
    mapping.write_text(mapping.read_text() + "5 123 000124.jpg\n")
    problems = run_expecting_problems(own_archive, tmp_path)["problems"]
    assert [(p["kind"], p["idx"]) for p in problems] == [("duplicate", 5)]


def test_a_face_without_any_part_mask_is_reported(own_archive, tmp_path):
    for f in (own_archive / "CelebAMask-HQ-mask-anno" / "0").glob("00007_*.png"):
        f.unlink()
    (problem,) = run_expecting_problems(own_archive, tmp_path)["problems"]
    assert (problem["kind"], problem["idx"]) == ("no_parts", 7)


def test_a_missing_part_folder_is_reported_once_and_its_faces_skipped(own_archive, tmp_path):
    shutil.rmtree(own_archive / "CelebAMask-HQ-mask-anno" / "1")  # holds face 2000
    report = run_expecting_problems(own_archive, tmp_path)
    assert [p["kind"] for p in report["problems"]] == ["missing_part_folder"]
    assert report["skipped"] == 1 and report["written"] == N - 1


def test_on_error_report_finishes_and_counts_the_skipped_faces(own_archive, tmp_path):
    (own_archive / "CelebA-HQ-img" / "3.jpg").write_bytes(b"")
    result = prepare(own_archive, tmp_path, on_error="report")
    assert result.skipped == 1 and result.counts["test"] == 2  # face 3 was a test face
    assert json.loads((tmp_path / "prep_report.json").read_text())["problems"][0]["kind"] == "corrupt"


# --- CLI -------------------------------------------------------------------------------------

def test_the_cli_script_prepares_the_fixture(archive, tmp_path):
    cmd = [sys.executable, str(REPO / "data_prep" / "prepare_celebamask.py"), "--src", str(archive),
           "--out", str(tmp_path), "--size", "16", "--workers", "1", "--part-size", str(PART), "--limit", "4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr
    assert "train 1, val 2, test 1" in done.stdout
    assert len(list(tmp_path.glob("*/masks/*.png"))) == 4

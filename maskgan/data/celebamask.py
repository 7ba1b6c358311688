"""CelebAMask-HQ preparation: official archive -> the kit's prepared folder (``maskgan.data.layout``).

The official archive (DESIGN.md section 3) stores, for each of the 30,000 faces ``i``:

* ``CelebA-HQ-img/{i}.jpg`` -- the 1024x1024 photo;
* ``CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png`` -- one 512x512 binary PNG per part
  that is *present* (a missing file means the part is absent), values 0/255, stored as L or RGB;
* ``CelebA-HQ-to-CelebA-mapping.txt`` -- header ``idx orig_idx orig_file``, then rows such as
  ``0 119613 119614.jpg`` linking each face to the CelebA photo it was made from.

Preparation turns this into what MaskGAN trains on (Sec. 3 of the paper: a semantic mask ``M^t``
and its image ``I^t``): the per-part PNGs are merged into one label map in
:data:`maskgan.labels.MERGE_ORDER` (later parts overwrite earlier ones, id = position + 1,
background 0), images and label maps are resized to ``size`` (images: LANCZOS; label maps:
NEAREST, so no new ids appear) and written as ``<split>/images/<i:05d>.png`` (PNG, lossless: the
source is already JPEG, a second lossy encoding would add artefacts the generator learns) and
``<split>/masks/<i:05d>.png`` (mode "L"), plus ``meta.json``.

The split is the official CelebA partition, see :func:`celeba_split`. Bad input is never skipped
silently: every problem is collected into ``<out>/prep_report.json`` and, by default, the run raises
:class:`PreparationError` at the end naming how many problems there were and where the report is.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from maskgan.errors import DataError, DataMissing, PreparationError
from maskgan.io import atomic_save_png, atomic_write_bytes, atomic_write_json, read_json
from maskgan.labels import CLASS_IDS, MERGE_ORDER
from maskgan.data.folder import read_rgb
from maskgan.data.layout import META_FILE, SPLITS, split_dirs

__all__ = [
    "ARCHIVE_IMAGE_DIR", "ARCHIVE_ANNO_DIR", "ARCHIVE_MAPPING_FILE", "REPORT_FILE", "SPLIT_RULE", "MappingRow",
    "PreparationError", "PrepResult", "celeba_split", "read_mapping", "read_part_mask",
    "merge_part_masks", "prepare_celebamask",
]

ARCHIVE_IMAGE_DIR = "CelebA-HQ-img"  # archive folder of the photos
ARCHIVE_ANNO_DIR = "CelebAMask-HQ-mask-anno"  # archive folder of the per-part masks
ARCHIVE_MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
REPORT_FILE = "prep_report.json"
IMAGES_PER_ANNO_FOLDER = 2000                    # masks of image i live in folder i // 2000
OFFICIAL_PART_SIZE = 512

# CelebA's list_eval_partition.txt, by 1-based file number (000001.jpg is 1).
CELEBA_LAST_FILE = 202599
CELEBA_VAL_FIRST = 162771
CELEBA_TEST_FIRST = 182638
SPLIT_RULE = (f"official CelebA partition by 1-based file number n = orig_idx + 1 (the number in orig_file): "
              f"n < {CELEBA_VAL_FIRST} train, {CELEBA_VAL_FIRST} <= n < {CELEBA_TEST_FIRST} val, "
              f"n >= {CELEBA_TEST_FIRST} test")

_HEADER = ["idx", "orig_idx", "orig_file"]
_PART_FILE = re.compile(r"^(\d{5})_([a-z_]+)\.png$")
_IMAGE_FILE = re.compile(r"^(\d+)\.jpg$")
_ORIG_FILE = re.compile(r"^(\d{6})\.jpg$")
# What PIL raises on a file it cannot decode (truncated, not an image, absurdly large).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class _BadInput(Exception):
    """One bad input file (internal: becomes a report entry)."""

    def __init__(self, kind: str, path, message: str):
        super().__init__(message)
        self.entry = {"kind": kind, "file": str(path), "message": message}


def celeba_split(file_number: int) -> str:
    """Official CelebA split of a photo, from its **1-based** CelebA file number.

    CelebA's ``list_eval_partition.txt`` assigns ``000001.jpg .. 162770.jpg`` to train,
    ``162771.jpg .. 182637.jpg`` to val and ``182638.jpg .. 202599.jpg`` to test. The mapping file's
    ``orig_idx`` is **0-based** (``orig_file`` is ``orig_idx + 1``), so this kit calls
    ``celeba_split(orig_idx + 1)``, i.e. the number written in ``orig_file``.

    The authors' ``g_partition.py`` applies the same thresholds to the 0-based ``orig_idx``
    instead, which shifts both boundaries by one photo: ``orig_idx == 162770`` (file 162771.jpg,
    CelebA val) lands in *their* train and in our val, ``orig_idx == 182637`` (file 182638.jpg,
    CelebA test) lands in their val and in our test. At most two of 30,000 faces differ; ours is
    the partition CelebA itself publishes, so no CelebA val/test photo ends up in training.
    """
    n = int(file_number)
    if not 1 <= n <= CELEBA_LAST_FILE:
        raise DataError(f"CelebA file number {n} is outside 1..{CELEBA_LAST_FILE}")
    if n >= CELEBA_TEST_FIRST:
        return "test"
    if n >= CELEBA_VAL_FIRST:
        return "val"
    return "train"


@dataclass(frozen=True)
class MappingRow:
    """One row of ``CelebA-HQ-to-CelebA-mapping.txt``."""
    idx: int          # CelebA-HQ index: image CelebA-HQ-img/{idx}.jpg
    orig_idx: int     # 0-based CelebA index
    orig_file: str    # CelebA file name, "{orig_idx + 1:06d}.jpg"

    @property
    def split(self) -> str:
        return celeba_split(self.orig_idx + 1)


def read_mapping(path) -> tuple[list[MappingRow], list[dict]]:
    """Parse the mapping file -> ``(rows sorted by idx, problems)``.

    The header line ``idx orig_idx orig_file`` is recognised by its content. A row is bad (a
    problem entry, not a row) when it does not have three fields, the numbers do not parse,
    ``orig_file`` is not ``{orig_idx + 1:06d}.jpg``, or the CelebA number is out of range.
    Duplicates: rows sharing an ``idx`` are all dropped (which one is right is unknowable); a
    repeated ``orig_idx`` keeps the first row and reports the others (the same photo twice).
    """
    path = Path(path)
    problems: list[dict] = []
    parsed: list[tuple[int, MappingRow]] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields or (line_no == 1 and fields == _HEADER):
            continue
        try:
            if len(fields) != 3:
                raise DataError(f"expected 3 fields 'idx orig_idx orig_file', got {len(fields)}")
            idx, orig_idx, orig_file = int(fields[0]), int(fields[1]), fields[2]
            match = _ORIG_FILE.match(orig_file)
            if idx < 0 or orig_idx < 0 or not match or int(match.group(1)) != orig_idx + 1:
                raise DataError("expected idx >= 0 and orig_file == '{orig_idx + 1:06d}.jpg'")
            row = MappingRow(idx, orig_idx, orig_file)
            row.split  # raises for a CelebA number out of range
        except ValueError as e:
            entry = {"kind": "bad_mapping_row", "file": f"{path}:{line_no}",
                     "message": f"{path} line {line_no} {line.strip()!r} does not parse: {e}"}
            if fields[0].isdigit():  # the face this row was meant for, so the report can name it
                entry["idx"] = int(fields[0])
            problems.append(entry)
            continue
        parsed.append((line_no, row))

    by_idx: dict[int, list[tuple[int, MappingRow]]] = {}
    for line_no, row in parsed:
        by_idx.setdefault(row.idx, []).append((line_no, row))
    rows, seen_orig = [], {}
    for idx in sorted(by_idx):
        entries = by_idx[idx]
        if len(entries) > 1:
            lines = ", ".join(str(n) for n, _ in entries)
            problems.append({"kind": "duplicate", "file": str(path), "idx": idx,
                             "message": f"{path}: idx {idx} appears on lines {lines}; all dropped"})
            continue
        line_no, row = entries[0]
        if row.orig_idx in seen_orig:
            problems.append({"kind": "duplicate", "file": str(path), "idx": idx,
                             "message": f"{path} line {line_no}: orig_idx {row.orig_idx} of idx {idx} is "
                                        f"already used by idx {seen_orig[row.orig_idx]}; idx {idx} dropped"})
            continue
        seen_orig[row.orig_idx] = idx
        rows.append(row)
    return rows, problems


def read_part_mask(path, part_size: int) -> np.ndarray:
    """Read one part PNG as a boolean ``part_size x part_size`` array (True where the part is).

    Like the authors' merge, any non-zero value counts as "part present". L, 1, P, RGB and RGBA
    files are accepted (for RGB any non-zero colour channel counts; alpha is ignored).
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.size != (part_size, part_size):
                raise _BadInput("wrong_size", path, f"{path} is {im.size[0]}x{im.size[1]}; "
                                                    f"part masks must be {part_size}x{part_size}")
            if im.mode in ("1", "L", "I", "I;16", "F"):
                return np.asarray(im) != 0
            return (np.asarray(im.convert("RGB")) != 0).any(axis=-1)
    except _DECODE_ERRORS as e:
        raise _BadInput("corrupt", path, f"{path} cannot be read as a PNG part mask ({e})") from None


def merge_part_masks(parts: dict[str, np.ndarray]) -> np.ndarray:
    """Merge boolean part masks into one uint8 label map (DESIGN.md section 3).

    Parts are painted in :data:`~maskgan.labels.MERGE_ORDER` whatever the order of ``parts``, so a
    later part overwrites an earlier one where they overlap (eyes over eyeglasses, hair over skin,
    cloth over neck); the id of a part is its position + 1, uncovered pixels stay 0 (background).
    """
    if not parts:
        raise DataError("merge_part_masks needs at least one part mask")
    unknown = sorted(set(parts) - set(MERGE_ORDER))
    if unknown:
        raise DataError(f"unknown part name(s) {unknown}; CelebAMask-HQ parts are {', '.join(MERGE_ORDER)}")
    shapes = {np.shape(m) for m in parts.values()}
    if len(shapes) != 1:
        raise DataError(f"part masks have different shapes {sorted(shapes)}")
    label_map = np.zeros(shapes.pop(), dtype=np.uint8)
    for name in MERGE_ORDER:
        if name in parts:
            label_map[np.asarray(parts[name]) != 0] = CLASS_IDS[name]
    return label_map


# --------------------------------------------------------------------------------------------
# One image (runs in a worker process)

@dataclass(frozen=True)
class _Task:
    idx: int
    split: str
    image: str                    # source photo
    parts: tuple[tuple[str, str], ...]  # (part name, source PNG)
    out_image: str
    out_mask: str
    size: int
    part_size: int


def _prepare_one(task: _Task) -> dict:
    """Read, merge, resize and write one face. Returns its problems and warnings."""
    warnings = []
    try:
        masks = {}
        for name, path in task.parts:
            masks[name] = read_part_mask(path, task.part_size)
            if not masks[name].any():
                warnings.append({"kind": "empty_part", "file": path, "idx": task.idx,
                                 "message": f"{path} is all zero (counted as absent)"})
        try:
            image = read_rgb(task.image, task.image)  # as shown: EXIF orientation, 16-bit scaled (data/folder.py)
        except DataError as e:
            raise _BadInput("corrupt", task.image, f"{e} (a CelebA-HQ photo)") from None
        if image.width != image.height:
            raise _BadInput("wrong_size", task.image,
                            f"{task.image} is {image.width}x{image.height}; expected a square photo")
    except _BadInput as bad:
        return {"idx": task.idx, "split": task.split, "problems": [dict(bad.entry, idx=task.idx)],
                "warnings": warnings}

    label_map = merge_part_masks(masks)
    if task.size != task.part_size:
        label_map = np.asarray(Image.fromarray(label_map).resize((task.size, task.size), Image.NEAREST))
    if image.size != (task.size, task.size):
        image = image.resize((task.size, task.size), Image.LANCZOS, reducing_gap=3.0)
    # Writes are outside the try: a full disk is our error, not a bad input file.
    atomic_save_png(task.out_mask, label_map)
    # zlib level 1: about 6x faster to encode than PIL's default 6 on a 512x512 photo, files ~15% larger.
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(task.out_image, buf.getvalue())
    return {"idx": task.idx, "split": task.split, "problems": [], "warnings": warnings}


# --------------------------------------------------------------------------------------------
# The whole archive

@dataclass
class PrepResult:
    """What :func:`prepare_celebamask` did. ``counts`` are the prepared faces per split."""
    counts: dict[str, int]
    written: int                  # faces written by this run
    reused: int                   # faces already prepared (resumed run)
    skipped: int                  # selected faces not prepared because of a problem
    problems: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    report_path: Path | None = None

    def summary(self) -> str:
        splits = ", ".join(f"{s} {self.counts[s]}" for s in SPLITS)
        text = f"prepared {splits} (written {self.written}, reused {self.reused}, skipped {self.skipped})"
        if self.problems:
            kinds: dict[str, int] = {}
            for p in self.problems:
                kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
            text += f"\n{len(self.problems)} problem(s): " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            text += "".join(f"\n  {p['message']}" for p in self.problems[:5])
            if len(self.problems) > 5:
                text += f"\n  ... and {len(self.problems) - 5} more"
        if self.warnings:
            text += f"\n{len(self.warnings)} warning(s) (e.g. empty part masks)"
        return text + f"\nreport: {self.report_path}"


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise DataMissing(f"{path} not found; expected {what}. Point --src at the unpacked "
                                f"CelebAMask-HQ archive (see data_prep/README.md)")


def _index_parts(anno_dir: Path, wanted: set[int], problems: list[dict]) -> tuple[dict, set[int]]:
    """``{idx: {part: path}}`` for the wanted faces, and the set of faces whose folder is missing."""
    parts: dict[int, dict[str, str]] = {}
    orphaned: set[int] = set()
    for folder in sorted({i // IMAGES_PER_ANNO_FOLDER for i in wanted}):
        sub = anno_dir / str(folder)
        if not sub.is_dir():
            lost = sorted(i for i in wanted if i // IMAGES_PER_ANNO_FOLDER == folder)
            orphaned.update(lost)
            problems.append({"kind": "missing_part_folder", "file": str(sub),
                             "message": f"{sub} not found; expected the part masks of faces "
                                        f"{lost[0]}..{lost[-1]} ({len(lost)} faces skipped)"})
            continue
        for entry in os.scandir(sub):
            if entry.name.startswith("."):
                continue
            m = _PART_FILE.match(entry.name)
            if not m or m.group(2) not in MERGE_ORDER:
                problems.append({"kind": "unexpected_file", "file": entry.path,
                                 "message": f"{entry.path} is not a part mask '<idx:05d>_<part>.png' with "
                                            f"part in {', '.join(MERGE_ORDER)}"})
                continue
            idx = int(m.group(1))
            if idx // IMAGES_PER_ANNO_FOLDER != folder:
                problems.append({"kind": "unexpected_file", "file": entry.path,
                                 "message": f"{entry.path} belongs in folder {idx // IMAGES_PER_ANNO_FOLDER}"})
            elif idx in wanted:
                parts.setdefault(idx, {})[m.group(2)] = entry.path
    return parts, orphaned


def _scan_images(image_dir: Path, mapped: set[int], mapping_path: Path, last: int | None,
                 problems: list[dict]) -> set[int]:
    """Indices of the photos in ``image_dir`` (up to ``last``); report photos the mapping lacks."""
    mapped = mapped | {p["idx"] for p in problems if "idx" in p}  # bad rows already name their photo
    found = set()
    for entry in os.scandir(image_dir):
        m = _IMAGE_FILE.match(entry.name)
        if m and (last is None or int(m.group(1)) <= last):
            found.add(int(m.group(1)))
            if int(m.group(1)) not in mapped:
                problems.append({"kind": "unmapped_image", "file": entry.path, "idx": int(m.group(1)),
                                 "message": f"{entry.path} has no row in {mapping_path}"})
        elif not m and not entry.name.startswith("."):
            problems.append({"kind": "unexpected_file", "file": entry.path,
                             "message": f"{entry.path} is not a photo '<idx>.jpg'"})
    return found


def _existing_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.png")} if folder.is_dir() else set()


def prepare_celebamask(src, out, size: int = 512, workers: int = 4, limit: int | None = None,
                       on_error: str = "raise", part_size: int = OFFICIAL_PART_SIZE,
                       progress: bool = True) -> PrepResult:
    """Prepare the official CelebAMask-HQ archive ``src`` into the folder ``out``.

    ``size``: output side in pixels; ``workers``: processes (1 = in this process); ``limit``:
    only the first N faces by idx are read, checked and prepared (quick trials); ``part_size``:
    the side of the part PNGs (512 in the official archive). Resumable: faces whose image and mask both exist are not redone.
    ``on_error="raise"`` (default) raises :class:`PreparationError` after the run if any input was
    bad; ``"report"`` finishes normally. Either way ``<out>/prep_report.json`` lists every problem
    and the summary is printed.
    """
    if on_error not in ("raise", "report"):
        raise DataError(f"on_error must be 'raise' or 'report', got {on_error!r}")
    if int(size) < 1 or int(part_size) < 1 or int(workers) < 1 or (limit is not None and int(limit) < 1):
        raise DataError(f"size, part_size, workers and limit must be positive; got {size}, {part_size}, "
                         f"{workers}, {limit}")
    src, out = Path(src), Path(out)
    _require(src, "the unpacked CelebAMask-HQ archive folder")
    image_dir, anno_dir, mapping_path = src / ARCHIVE_IMAGE_DIR, src / ARCHIVE_ANNO_DIR, src / ARCHIVE_MAPPING_FILE
    _require(image_dir, f"the folder of photos '{ARCHIVE_IMAGE_DIR}/<idx>.jpg'")
    _require(anno_dir, f"the folder of part masks '{ARCHIVE_ANNO_DIR}/<idx // 2000>/<idx:05d>_<part>.png'")
    _require(mapping_path, f"the mapping file '{ARCHIVE_MAPPING_FILE}' (header 'idx orig_idx orig_file')")
    meta_path = out / META_FILE
    if meta_path.exists():
        old = read_json(meta_path)
        if old.get("dataset") != "celebamask-hq" or old.get("size") != int(size):
            raise DataError(f"{meta_path} describes dataset {old.get('dataset')!r} at size {old.get('size')}; "
                             f"refusing to mix it with celebamask-hq at size {size}. Use another --out folder")

    rows, problems = read_mapping(mapping_path)
    if not rows:
        raise DataError(f"{mapping_path} has no usable rows; expected lines like '0 119613 119614.jpg'")
    mapped = {r.idx for r in rows}
    # With a limit, only the first N faces (by idx) are read and checked.
    last = rows[min(int(limit), len(rows)) - 1].idx if limit is not None else None
    rows = rows[:int(limit)] if limit is not None else rows
    problems = [p for p in problems if last is None or p.get("idx", -1) <= last]
    images_on_disk = _scan_images(image_dir, mapped, mapping_path, last, problems)
    parts, orphaned = _index_parts(anno_dir, {r.idx for r in rows}, problems)

    done = {s: _existing_names(split_dirs(out, s)[0]) & _existing_names(split_dirs(out, s)[1]) for s in SPLITS}
    counts = {s: 0 for s in SPLITS}
    tasks, reused, prepared = [], 0, set()
    for row in rows:
        name, split = f"{row.idx:05d}", row.split
        images_out, masks_out = split_dirs(out, split)
        if name in done[split]:
            reused += 1
            counts[split] += 1
            prepared.add(row.idx)
        elif row.idx in orphaned:
            pass  # reported once per missing folder
        elif row.idx not in images_on_disk:
            problems.append({"kind": "missing_image", "file": str(image_dir / f"{row.idx}.jpg"), "idx": row.idx,
                             "message": f"{image_dir / f'{row.idx}.jpg'} not found; the mapping lists idx {row.idx}"})
        elif row.idx not in parts:
            pattern = anno_dir / str(row.idx // IMAGES_PER_ANNO_FOLDER) / f"{name}_<part>.png"
            problems.append({"kind": "no_parts", "file": str(pattern), "idx": row.idx,
                             "message": f"face {row.idx} has no part mask at all (no {pattern})"})
        else:
            tasks.append(_Task(row.idx, split, str(image_dir / f"{row.idx}.jpg"),
                               tuple(sorted(parts[row.idx].items())), str(images_out / f"{name}.png"),
                               str(masks_out / f"{name}.png"), int(size), int(part_size)))

    warnings, written = [], 0
    for result in _run(tasks, int(workers), progress):
        warnings += result["warnings"]
        if result["problems"]:
            problems += result["problems"]
        else:
            written += 1
            counts[result["split"]] += 1
            prepared.add(result["idx"])

    # Skipped: every face (by idx) a problem kept out, counted once however many problems it had.
    skipped = len(({p["idx"] for p in problems if "idx" in p} | orphaned) - prepared)
    result = PrepResult(counts, written, reused, skipped, problems, warnings, out / REPORT_FILE)
    atomic_write_json(meta_path, {
        "dataset": "celebamask-hq", "size": int(size), "counts": counts, "split_rule": SPLIT_RULE,
        "image_format": "png", "label_order": list(MERGE_ORDER), "source": str(src), "limit": limit,
        "skipped": skipped})
    atomic_write_json(result.report_path, {
        "source": str(src), "out": str(out), "size": int(size), "counts": counts, "written": written,
        "reused": reused, "skipped": skipped, "problems": problems, "warnings": warnings})
    print(result.summary())
    if problems and on_error == "raise":
        raise PreparationError(f"{len(problems)} problem(s) in the CelebAMask-HQ archive {src} "
                               f"({skipped} face(s) skipped); every one is listed in {result.report_path}. "
                               f"Fix them, or pass on_error='report' (--on-error report) to accept the skips")
    return result


def _run(tasks: list[_Task], workers: int, progress: bool):
    """Yield the results of :func:`_prepare_one` for every task, in parallel when ``workers > 1``."""
    bar = tqdm(total=len(tasks), desc="CelebAMask-HQ", unit="face", disable=not progress or not tasks)
    try:
        if workers == 1 or len(tasks) < 2:
            for task in tasks:
                yield _prepare_one(task)
                bar.update()
            return
        # "spawn": safe even when the caller (a notebook) has torch and its threads loaded.
        chunk = max(1, min(64, len(tasks) // (workers * 8)))
        with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            for result in pool.imap_unordered(_prepare_one, tasks, chunksize=chunk):
                yield result
                bar.update()
    finally:
        bar.close()

"""What a photo round trip costs: ``python -m maskgan bench --only photo``.

A photo goes through :func:`maskgan.photo.edit_photo`: read (as a viewer shows it), parse once to
find the face, crop, resize, parse the crop, edit (render + composite), and paste the edited region
back into the photo at its full resolution. Timed per step, median of a few runs, on a real photo
that ships with matplotlib (``grace_hopper.jpg``, 512 x 600) at its own size, resized to 512 x 512,
and resized to 4000 x 3000 (12 megapixels), with two model sizes:

* the kit's shipped 64 px SynthFaces models (stage I and their own face parser);
* the authors' size: the DMN at the ``paper`` widths (512 px) and BiSeNet, both with random weights
  (the kit ships neither file; the cost does not depend on the weights).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

__all__ = ["bench_photo", "sample_photo"]


def sample_photo() -> Path:
    """A real photograph of a face that ships with matplotlib (``grace_hopper.jpg``, 512 x 600)."""
    from matplotlib import cbook
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _mouth_edit(label):
    """The same edit whatever the parser found (random weights parse noise): a mouth painted where a
    mouth is in an aligned face, 16% of the width by 4% of the height."""
    h, w = label.shape
    out = label.copy()
    out[int(h * 0.7):int(h * 0.74), int(w * 0.42):int(w * 0.58)] = 11  # mouth
    return out


def _authors_size_models(device: str, precision: str):
    import torch

    from .config import Config
    from .editing import Editor
    from .interop.faceparsing import ImportedParser
    from .nn import build_dmn
    from .nn.bisenet import BiSeNet
    cfg = Config.preset("paper")
    torch.manual_seed(0)
    editor = Editor(build_dmn(cfg), device=device, precision=precision)
    editor.cfg = cfg
    return editor, ImportedParser(BiSeNet(19), "bisenet").to(device)


def _shipped_models(device: str, precision: str):
    from .editing import Editor
    from .pretrained import pretrained_run
    run = pretrained_run()
    return (Editor.from_run(run, stage="dmn", device=device, precision=precision),
            run.load_net("parser", device=device)[0])


def bench_photo(device: str = "cpu", precision: str = "auto", repeat: int = 3) -> list[dict]:
    """Rows ``{"benchmark", "setting", "value", "unit"}``: seconds per step of :func:`edit_photo`, the
    generator rendering at ``precision`` (:mod:`maskgan.precision`)."""
    from PIL import Image

    from .data.folder import read_rgb
    from .photo import edit_photo
    photo = sample_photo()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        im = read_rgb(photo)
        photos = {"512x600 photo": photo}
        for name, size in (("512x512 photo", (512, 512)), ("12 MP photo (4000x3000)", (4000, 3000))):
            path = Path(tmp) / f"{size[0]}x{size[1]}.png"
            im.resize(size, Image.BICUBIC).save(path)
            photos[name] = path
        for model, load in (("shipped 64 px models", _shipped_models), ("authors' size, 512 px", _authors_size_models)):
            editor, parser = load(device, precision)
            for pname, path in photos.items():
                edit_photo(path, editor, parser, _mouth_edit)  # warm-up
                steps: dict[str, list[float]] = {}
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    result = edit_photo(path, editor, parser, _mouth_edit)
                    total = time.perf_counter() - t0
                    for k, v in {**result.seconds, "total": total}.items():
                        steps.setdefault(k, []).append(v)
                for k, v in steps.items():
                    rows.append({"benchmark": f"photo round trip: {k}",
                                 "setting": f"{model}, {editor.precision}, {pname}",
                                 "value": round(statistics.median(v), 4), "unit": "s"})
    return rows

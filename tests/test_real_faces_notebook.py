"""Notebook 07 (issue 15, section 5): outside the demo pipeline, stops cleanly without the files,
and runs end to end on random-weight files written in the authors' and BiSeNet's layouts."""
import ast

import nbformat
import numpy as np
import torch
from authors_layout import DemoGenerator
from faceparsing_layout import RefBiSeNet
from PIL import Image

from maskgan.labels import CLASS_IDS
from maskgan.pipeline import NOTEBOOK_DIR, _kernel_name, discover_notebooks, in_pipeline

NOTEBOOK = NOTEBOOK_DIR / "07_real_faces.ipynb"


def _execute(tmp_path, **parameters):
    import papermill as pm
    out = tmp_path / "07_executed.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, kernel_name=_kernel_name(),
                        progress_bar=False, cwd=str(NOTEBOOK_DIR))
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return nb, text, errors


def test_07_is_outside_the_demo_pipeline_but_listed_with_everything():
    assert not in_pipeline(NOTEBOOK)
    assert "07_real_faces" not in [p.stem for p in discover_notebooks()]
    assert "07_real_faces" in [p.stem for p in discover_notebooks(everything=True)]


def test_07_has_a_literal_parameters_cell_naming_the_files():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = []
    for stmt in ast.parse(tagged[0].source).body:
        ast.literal_eval(stmt.value)
        names.append(stmt.targets[0].id)
    assert {"generator", "parser", "faces", "photo", "run_dir", "size", "device"} <= set(names)
    assert nb.cells[-1].source.startswith("## What to try next")


def test_without_the_files_07_says_what_to_download_and_stops_cleanly(tmp_path):
    nb, text, errors = _execute(tmp_path, run_dir=str(tmp_path / "authors"))
    assert errors == []
    assert "latest_net_G.pth" in text and "switchablenorms/CelebAMask-HQ" in text
    assert "the remaining cells will do nothing" in text
    assert "`make app` serves the editing page on the kit's shipped SynthFaces models" in text  # what works meanwhile
    assert not (tmp_path / "authors").exists()  # nothing imported, nothing written


def _random_generator_file(path):
    with torch.device("meta"):
        net = DemoGenerator()
    net = net.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if "running_var" in name:
                t.fill_(1.0)
            elif "running_mean" in name or name.endswith("bias"):
                t.zero_()
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / max(1, t[0].numel())) ** 0.5)
    torch.save(net.state_dict(), path)
    return path


def test_07_runs_on_random_weight_files_in_the_authors_layout(tmp_path):
    generator = _random_generator_file(tmp_path / "latest_net_G.pth")
    torch.manual_seed(0)
    parser = tmp_path / "79999_iter.pth"
    torch.save(RefBiSeNet(19).state_dict(), parser)
    faces = tmp_path / "samples"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # the authors' sample layout: N.jpg at twice the size of N.png
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(faces / f"{i}.jpg")
        mask = np.full((64, 64), CLASS_IDS["skin"], np.uint8)
        mask[:16] = CLASS_IDS["hair"]
        mask[40:44, 20:44] = CLASS_IDS["mouth"]
        mask[20:24, 16:28] = CLASS_IDS["eye_g"]
        Image.fromarray(mask).save(faces / f"{i}.png")
    run_dir = tmp_path / "authors"
    nb, text, errors = _execute(tmp_path, generator=str(generator), parser=str(parser), faces=str(faces),
                                run_dir=str(run_dir), size=64, device="cpu")
    assert errors == [], errors
    assert f"imported {generator}" in text and "2 face(s)" in text and "parser: bisenet" in text
    for edit in ("close mouth", "remove glasses", "hair from other face"):
        assert f"{edit}:" in text
    assert "PSNR against the full frame" in text
    assert (run_dir / "figures" / "07_real_face_edits.png").stat().st_size > 5_000
    assert (run_dir / "dmn").is_dir()  # a run directory like any other
    widgets = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 2  # the upload box and the editing tabs


def test_07_parses_a_photo_without_a_mask(tmp_path):
    generator = _random_generator_file(tmp_path / "latest_net_G.pth")
    torch.manual_seed(0)
    parser = tmp_path / "79999_iter.pth"
    torch.save(RefBiSeNet(19).state_dict(), parser)
    photo = tmp_path / "me.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(photo)
    nb, text, errors = _execute(tmp_path, generator=str(generator), parser=str(parser), photo=str(photo),
                                run_dir=str(tmp_path / "authors"), size=64, device="cpu")
    assert errors == [], errors
    assert "1 face(s)" in text and "me.jpg" in text


def test_real_face_inputs_names_each_missing_file_and_accepts_a_run_imported_before(tmp_path):
    from maskgan.checkpoint import save_checkpoint
    from maskgan.config import Config
    from maskgan.nn import build_dmn
    from maskgan.photo import real_face_inputs
    said = []
    assert not real_face_inputs(run_dir=str(tmp_path / "none"), report=said.append)
    text = "\n".join(said)
    assert "generator is empty" in text and "latest_net_G.pth" in text and "faces and photo are empty" in text
    photo = tmp_path / "me.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    run = tmp_path / "run"
    cfg = Config.preset("smoke")
    save_checkpoint(run / "dmn", 0, {"dmn": build_dmn(cfg)}, {}, {"config": cfg.to_dict()})
    said.clear()
    assert not real_face_inputs(run_dir=str(run), photo=str(photo), report=said.append)
    text = "\n".join(said)
    assert "imported before" in text and "needs the parser" in text and "79999_iter.pth" in text
    said.clear()
    assert real_face_inputs(run_dir=str(run), faces=str(tmp_path), report=said.append)
    assert not any("Download" in line for line in said)


def test_the_functions_07_names_in_its_prose_exist():
    import re

    from test_notebooks import markdown_of, resolve
    names = sorted(set(re.findall(r"`(maskgan(?:\.[A-Za-z_]\w*)+)`", markdown_of(NOTEBOOK))))
    assert "maskgan.photo.prepare_photo" in names and "maskgan.editing.preview_psnr" in names
    for name in names:
        resolve(name)

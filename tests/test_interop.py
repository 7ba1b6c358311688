"""Foreign weights load into the kit and compute what they computed in their own code.

The authors' networks and the public face parsers are stood in for by modules with their exact
state-dict layout and computation (``tests/authors_layout.py``, ``tests/faceparsing_layout.py``),
filled with seeded random weights (spread so that every mistake shows), saved with ``torch.save``
as their code saves them, imported, and compared output for output (max abs difference <= 1e-4).
"""
import argparse
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from authors_layout import DemoAdaIN, DemoBlender, DemoGenerator, DemoVAE
from faceparsing_layout import RefBiSeNet, RefUNet

from maskgan.errors import MaskGANError, WeightsImportError
from maskgan.interop import authors as A
from maskgan.interop import faceparsing as FP
from maskgan.interop.cli import register
from maskgan.labels import CLASS_IDS, CLASS_NAMES, one_hot

#: How far the kit's output may be from the reference's. Both compute the same function in float32 with
#: the sums in other orders (AdaIN's statistics, concatenations), so each is within its float32
#: rounding e of the exact output and they differ by at most 2e. For the paper-width DMN at 256-512 px
#: (outputs in [-1, 1]), e measured against a float64 copy of the network was 7.5e-6 with AVX-512
#: kernels and 2.1e-5 with AVX2 or SSE4.1 ones (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA; AMX is not used
#: for float32, which torch keeps in IEEE float32 on the CPU): 1e-4 is over twice the largest 2e. The
#: blender, MaskVAE and parsers run the same operations in the same order as the references and come
#: out bitwise equal. docs/reproducibility.md has the measurement.
TOL = 1e-4


# --- helpers ---------------------------------------------------------------------------------------

def spread(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Seeded random weights with He-like scale, random biases and BatchNorm statistics; eval mode."""
    g = torch.Generator().manual_seed(seed)

    def normal(t, std=1.0, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    def uniform(t, low, high):
        t.copy_(torch.rand(t.shape, generator=g) * (high - low) + low)

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                normal(m.weight, math.sqrt(2.0 / m.weight[0].numel()))
                if m.bias is not None:
                    normal(m.bias, 0.1)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.num_batches_tracked.zero_()
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.1)
                uniform(m.running_var, 0.5, 1.5)
            elif isinstance(m, DemoAdaIN):  # unused by their forward: random, so a wrong use would show
                normal(m.running_mean)
                uniform(m.running_var, 0.5, 1.5)
    return module.eval()


def random_net(cls, seed: int) -> torch.nn.Module:
    """``cls()`` with :func:`spread` weights (built on the meta device: no default initialisation)."""
    with torch.device("meta"):
        module = cls()
    return spread(module.to_empty(device="cpu"), seed)


def face(size: int, seed: int):
    """(image in [-1, 1], label map, edited label map) with every class and smooth colours."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, 19, (1, 1, size // 16, size // 16), generator=g).float()
    label = F.interpolate(cells, scale_factor=16, mode="nearest")[0, 0].long()
    coarse = torch.randn(1, 3, size // 32, size // 32, generator=g)
    image = torch.tanh(2 * F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))[0]
    edited = label.clone()
    edited[: size // 4] = CLASS_IDS["hair"]
    edited[size // 2: size // 2 + size // 8, size // 4: size // 2] = CLASS_IDS["l_eye"]
    return image, label, edited


def maxdiff(a, b) -> float:
    return float((a - b).abs().max())


def save(module, path, prefix="", legacy=False, drop_batch_counts=False):
    sd = {prefix + k: v for k, v in module.state_dict().items()
          if not (drop_batch_counts and k.endswith("num_batches_tracked"))}
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    return path


# --- fixtures: the authors' networks, their files, the kit's imports --------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("foreign")


@pytest.fixture(scope="module")
def demo_generator():
    return random_net(DemoGenerator, seed=1)


@pytest.fixture(scope="module")
def generator_file(demo_generator, files):
    return save(demo_generator, files / "latest_net_G.pth")


@pytest.fixture(scope="module")
def demo_blender():
    return random_net(DemoBlender, seed=2)


@pytest.fixture(scope="module")
def blender_file(demo_blender, files):
    return save(demo_blender, files / "latest_net_B.pth")


@pytest.fixture(scope="module")
def demo_vae():
    return random_net(DemoVAE, seed=3)


@pytest.fixture(scope="module")
def vae_file(demo_vae, files):
    return save(demo_vae, files / "vae.pth", drop_batch_counts=True)  # as PyTorch 0.4.0 wrote it


@pytest.fixture(scope="module")
def kit_dmn_256(generator_file):
    return A.load_authors_generator(generator_file, A.paper_config(256))[0]


@pytest.fixture(scope="module")
def face_256():
    return face(256, seed=4)


@pytest.fixture(scope="module")
def reference_256(demo_generator, face_256):
    """Their generator's outputs at 256: the reconstruction and the edit (style of the original face)."""
    image, label, edited = face_256
    with torch.no_grad():
        recon = demo_generator(one_hot(label[None]), one_hot(label[None]), image[None])
        edit = demo_generator(one_hot(edited[None]), one_hot(label[None]), image[None])
    return recon, edit


@pytest.fixture(scope="module")
def imported_run(generator_file, blender_file, vae_file, files):
    run_dir = files / "run_authors"
    written = A.import_authors(generator_file, run_dir, blender=blender_file, vae=vae_file, size=512)
    return run_dir, written


@pytest.fixture(scope="module")
def imported_editor(imported_run):
    from maskgan.editing import Editor
    return Editor.from_run(imported_run[0], precision="fp32")  # parity with the reference is a float32 property


# --- the generator ----------------------------------------------------------------------------------

@torch.no_grad()
def test_generator_reconstruction_matches_the_reference_at_256(reference_256, kit_dmn_256, face_256):
    image, label, _ = face_256
    theirs = reference_256[0]
    assert theirs.std() > 0.2 and (theirs.abs() > 0.999).float().mean() < 0.2  # not flat, not saturated
    assert maxdiff(kit_dmn_256(one_hot(label[None]), image[None]), theirs) <= TOL


@torch.no_grad()
def test_generator_edit_matches_the_reference_at_256(reference_256, kit_dmn_256, face_256):
    image, label, edited = face_256
    recon, theirs = reference_256
    ours = kit_dmn_256.render(one_hot(edited[None]), kit_dmn_256.style(image[None], one_hot(label[None])))
    assert maxdiff(ours, theirs) <= TOL
    assert maxdiff(theirs, recon) > 0.1  # the edit changes the face, so a layout mistake would show


@torch.no_grad()
def test_style_vector_is_read_as_means_then_stds_per_adain_layer(demo_generator, kit_dmn_256, face_256):
    image, label, _ = face_256
    mask = one_hot(label[None])
    fea_a, fea_b = demo_generator.enc_label(mask)
    demo_generator.assign_style(demo_generator.enc_style(image[None], fea_a, fea_b))
    theirs = [m for m in demo_generator.model.modules() if isinstance(m, DemoAdaIN)]
    ours = [pair for block in kit_dmn_256.backbone.split_style(kit_dmn_256.style(image[None], mask)) for pair in block]
    assert len(ours) == len(theirs) == 8
    for (gamma, beta), layer in zip(ours, theirs):
        assert maxdiff(gamma[0], layer.weight) <= TOL and maxdiff(beta[0], layer.bias) <= TOL
    assert A._style_permutation(A.paper_config()) is None  # the two layouts agree: no rows permuted


def test_adain_running_buffers_are_the_only_dropped_keys(demo_generator):
    sd = demo_generator.state_dict()
    imported = set(A._prefix_map(A._meta_state(lambda: A.build_dmn(A.paper_config())),
                                 A._generator_pairs(A.paper_config())).values())
    dropped = sorted(set(sd) - imported)
    assert len(dropped) == 16 and all(k.endswith(("norm.running_mean", "norm.running_var")) for k in dropped)
    assert all(kind and rx and len(reason) > 40 for kind, rx, reason in A.DROPPED_KEYS)


def test_missing_key_is_named(demo_generator):
    sd = dict(demo_generator.state_dict())
    del sd["enc_style.sft1.SFT_scale_conv1.weight"]
    with pytest.raises(WeightsImportError, match="missing keys .*enc_style.sft1.SFT_scale_conv1.weight"):
        A.authors_generator_to_kit(sd, source="latest_net_G.pth")


def test_unexpected_key_is_named(demo_generator):
    sd = dict(demo_generator.state_dict())
    sd["enc_style.sft3.SFT_scale_conv1.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(WeightsImportError, match="unexpected keys .*enc_style.sft3.SFT_scale_conv1.weight"):
        A.authors_generator_to_kit(sd, source="latest_net_G.pth")


def test_misshaped_key_names_the_key_and_both_shapes(demo_generator):
    sd = dict(demo_generator.state_dict())
    sd["model.1.weight"] = torch.zeros(64, 18, 7, 7)
    with pytest.raises(WeightsImportError) as e:
        A.authors_generator_to_kit(sd, source="latest_net_G.pth")
    assert "model.1.weight" in str(e.value) and "(64, 18, 7, 7)" in str(e.value) and "(64, 19, 7, 7)" in str(e.value)


def test_a_file_of_another_network_is_recognised_in_the_error(demo_blender):
    with pytest.raises(WeightsImportError, match="looks like the authors' alpha blender"):
        A.authors_generator_to_kit(demo_blender.state_dict(), source="latest_net_B.pth")


# --- blender and file formats -------------------------------------------------------------------------

@torch.no_grad()
def test_blender_matches_the_reference(demo_blender, blender_file, face_256):
    blender = A.load_authors_blender(blender_file, A.paper_config(256))[0]
    a = face_256[0][None]
    b = torch.flip(a, dims=[3])
    (theirs, alpha_theirs), (ours, alpha_ours) = demo_blender(a, b), blender(a, b)
    assert maxdiff(ours, theirs) <= TOL and maxdiff(alpha_ours, alpha_theirs) <= TOL


@torch.no_grad()
def test_a_dataparallel_prefix_and_the_legacy_file_format_are_accepted(demo_blender, files, face_256):
    path = save(demo_blender, files / "dataparallel_net_B.pth", prefix="module.", legacy=True)
    sd, _ = A.read_state_dict(path)
    assert not any(k.startswith("module.") for k in sd)
    blender = A.load_authors_blender(path, A.paper_config(256))[0]
    a = face_256[0][None]
    assert maxdiff(blender(a, -a)[0], demo_blender(a, -a)[0]) <= TOL


def test_read_state_dict_returns_the_files_sha256(blender_file):
    assert A.read_state_dict(blender_file)[1] == hashlib.sha256(Path(blender_file).read_bytes()).hexdigest()


def test_a_pickled_object_is_refused(files):
    path = files / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsImportError, match="whole_model.pth contains pickled Python objects"):
        A.read_state_dict(path)


def test_a_file_that_is_not_a_dict_of_tensors_is_refused(files):
    path = files / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(WeightsImportError, match="list.pth holds a list, not a dict of tensors"):
        A.read_state_dict(path)


def test_a_wrapped_training_checkpoint_is_refused_with_a_hint(files):
    path = files / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(WeightsImportError, match=r"entries \[epoch, state_dict\].*save that entry alone"):
        A.read_state_dict(path)


def test_a_missing_file_is_named(files):
    with pytest.raises(WeightsImportError, match="nowhere.pth does not exist; expected a PyTorch state dict"):
        A.read_state_dict(files / "nowhere.pth")


def test_a_truncated_file_is_refused(blender_file, files):
    path = files / "truncated.pth"
    path.write_bytes(Path(blender_file).read_bytes()[:100_000])
    with pytest.raises(WeightsImportError, match="truncated.pth could not be read .* truncated"):
        A.read_state_dict(path)


# --- import_authors: a run directory the Editor loads ---------------------------------------------------

@torch.no_grad()
def test_import_authors_writes_a_run_dir_whose_editor_renders_like_the_reference_at_512(demo_generator,
                                                                                       imported_editor):
    image, label, edited = face(512, seed=5)
    theirs = demo_generator(one_hot(edited[None]), one_hot(label[None]), image[None])[0]
    ours = imported_editor.rerender(image, label, edited)  # the paper's edit, as their demo renders it
    assert maxdiff(ours, theirs) <= TOL


def test_import_authors_records_each_source_file_and_keeps_the_blender_with_the_dmn(imported_run, generator_file,
                                                                                    blender_file, vae_file):
    _, written = imported_run
    dmn_ckpt = Path(written["stages"]["dmn"]["checkpoint"])
    assert sorted(p.name for p in dmn_ckpt.glob("*.safetensors")) == ["blender.safetensors", "dmn.safetensors"]
    record = json.loads((dmn_ckpt / "config.json").read_text())
    assert record["stage"] == "dmn" and record["config"]["data"]["size"] == 512
    files = record["imported"]["files"]
    for name, path, kind in (("dmn", generator_file, "authors-generator"), ("blender", blender_file, "authors-blender")):
        assert files[name]["kind"] == kind and files[name]["path"] == str(Path(path).resolve())
        assert files[name]["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert record["imported"]["date"]
    vae_record = json.loads((Path(written["stages"]["vae"]["checkpoint"]) / "config.json").read_text())
    assert vae_record["imported"]["files"]["maskvae"]["kind"] == "authors-vae"


@torch.no_grad()
def test_imported_vae_stage_encodes_and_decodes_like_the_reference(demo_vae, imported_editor):
    vae = imported_editor.vae
    mask = one_hot(face(512, seed=6)[1][None])
    (mu, logvar), (their_mu, their_logvar) = vae.encode(mask), demo_vae.encode(mask)
    assert maxdiff(mu, their_mu) <= TOL and maxdiff(logvar, their_logvar) <= TOL
    assert maxdiff(vae.decode(mu), demo_vae.decode(their_mu)) <= TOL


def test_the_authors_generator_reads_faces_with_bicubic_as_their_demo_does(imported_editor, files):
    """Issue 24, item 8: their demo resizes inputs with BICUBIC; the kit's models keep LANCZOS."""
    import numpy as np
    from PIL import Image
    folder = files / "faces_1024"
    folder.mkdir()
    photo = np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    Image.fromarray(photo).save(folder / "0.jpg", quality=95)
    Image.fromarray(np.zeros((512, 512), np.uint8)).save(folder / "0.png")
    assert imported_editor.resample == "bicubic"
    faces = imported_editor.open_faces(folder)
    assert faces.resample == "bicubic"
    stored = Image.open(folder / "0.jpg").convert("RGB")
    for f, filt in (("bicubic", Image.BICUBIC), ("lanczos", Image.LANCZOS)):
        want = torch.from_numpy(np.asarray(stored.resize((512, 512), filt), np.float32) / 127.5 - 1).permute(2, 0, 1)
        close = float((faces[0]["image"] - want).abs().max()) < 1e-6
        assert close == (f == "bicubic"), f


def test_import_authors_refuses_the_vae_at_another_size(generator_file, vae_file, files):
    with pytest.raises(WeightsImportError, match="512x512 masks only"):
        A.import_authors(generator_file, files / "run_256", vae=vae_file, size=256)


def test_import_authors_refuses_to_overwrite_a_stage(imported_run, generator_file):
    run_dir, _ = imported_run
    with pytest.raises(WeightsImportError, match="already holds a checkpoint"):
        A.import_authors(generator_file, run_dir)


# --- face parsers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_bisenet():
    return random_net(RefBiSeNet, seed=7)


@pytest.fixture(scope="module")
def bisenet_file(demo_bisenet, files):
    return save(demo_bisenet, files / "79999_iter.pth")


def _imagenet(image01):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (image01 - mean) / std


@torch.no_grad()
def test_bisenet_checkpoint_loads_and_parses_like_the_reference_in_kit_ids(demo_bisenet, bisenet_file):
    parser = FP.load_bisenet(bisenet_file)
    image = face(512, seed=8)[0][None]
    theirs = demo_bisenet(_imagenet((image + 1) / 2))[0]
    ours = parser.logits(image)
    assert maxdiff(ours, theirs[:, torch.argsort(torch.tensor(FP.BISENET_TO_KIT))]) <= TOL
    their_labels = theirs.argmax(1)
    assert len(their_labels.unique()) >= 4  # a varied parse, so a wrong remap shows
    assert torch.equal(parser.parse(image), torch.tensor(FP.BISENET_TO_KIT)[their_labels])


def test_bisenet_classes_are_remapped_by_name():
    # zllrunning/face-parsing.PyTorch prepropess_data.py: value = position in this list + 1
    theirs = ["skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
              "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"]
    assert FP.BISENET_TO_KIT[0] == 0
    assert [CLASS_NAMES[FP.BISENET_TO_KIT[i + 1]] for i in range(18)] == theirs
    assert FP.BISENET_TO_KIT[17] == CLASS_IDS["hair"] == 13


@torch.no_grad()
def test_parser_returns_label_maps_at_the_input_size(bisenet_file):
    parser = FP.load_bisenet(bisenet_file)
    labels = parser.parse(torch.zeros(3, 96, 64))
    assert labels.shape == (96, 64) and labels.dtype == torch.int64 and 0 <= labels.min() <= labels.max() <= 18


def test_bisenet_missing_key_is_named(demo_bisenet, files):
    sd = dict(demo_bisenet.state_dict())
    del sd["cp.arm16.conv_atten.weight"]
    path = files / "broken_bisenet.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsImportError, match="broken_bisenet.pth does not fit .*BiSeNet.*cp.arm16.conv_atten.weight"):
        FP.load_bisenet(path)


@torch.no_grad()
def test_authors_unet_parser_parses_like_the_reference(files):
    ref = random_net(RefUNet, seed=9)
    path = save(ref, files / "model.pth", prefix="module.")
    image = face(512, seed=10)[0][None]
    theirs = ref(image)
    parser = FP.load_authors_parser(path)
    assert maxdiff(parser.logits(image), theirs) <= TOL
    assert torch.equal(parser.parse(image), theirs.argmax(1))


def test_import_weights_command_writes_a_parser_that_loads_back(bisenet_file, files):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    out = files / "run_parsers"
    args = parser.parse_args(["import-weights", "bisenet", str(bisenet_file), "--out", str(out)])
    assert args.func(args) == 0
    record = json.loads((out / "face_parsers" / "bisenet.json").read_text())
    assert record["output_to_kit_ids"] == list(FP.BISENET_TO_KIT)
    assert record["imported"]["sha256"] == hashlib.sha256(Path(bisenet_file).read_bytes()).hexdigest()
    again = FP.load_bisenet(out)
    original = FP.load_bisenet(bisenet_file)
    for (k, v), w in zip(again.net.state_dict().items(), original.net.state_dict().values()):
        assert torch.equal(v, w), k


def test_import_weights_command_reports_errors_as_maskgan_errors(files):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["import-weights", "authors-generator", str(files / "absent.pth"),
                              "--run-dir", str(files / "run_absent")])
    with pytest.raises(MaskGANError, match="absent.pth does not exist"):
        args.func(args)


def _import(*argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["import-weights", *map(str, argv)])
    return args.func(args)


def test_a_second_parser_import_is_refused_unless_overwrite_is_asked_for(bisenet_file, files):
    out = files / "run_twice"
    assert _import("bisenet", bisenet_file, "--out", out) == 0
    first = (out / "face_parsers" / "bisenet.json").read_text()
    with pytest.raises(WeightsImportError, match=r"bisenet\.safetensors already holds an imported bisenet parser; "
                                                 r"pass --overwrite"):
        _import("bisenet", bisenet_file, "--out", out)  # before: replaced without a word
    assert (out / "face_parsers" / "bisenet.json").read_text() == first
    assert _import("bisenet", bisenet_file, "--out", out, "--overwrite") == 0


def test_a_folder_given_as_the_weights_file_is_called_a_folder(files):
    folder = files / "downloads"
    folder.mkdir(exist_ok=True)
    with pytest.raises(WeightsImportError, match=r"downloads is a folder; name the parser's file itself \(79999_iter"):
        _import("bisenet", folder, "--out", files / "run_folder")  # before: ".../bisenet.safetensors does not exist"
    with pytest.raises(WeightsImportError, match=r"downloads is a folder; name the file itself"):
        _import("authors-generator", folder, "--run-dir", files / "run_folder")


def test_an_import_removes_the_temporary_files_a_killed_import_left(bisenet_file, files):
    out = files / "run_killed"
    (out / "face_parsers").mkdir(parents=True)
    leftover = out / "face_parsers" / ".bisenet.safetensors.k2x9abcd.tmp"  # what a kill during save_weights leaves
    leftover.write_bytes(b"half a file")
    assert _import("bisenet", bisenet_file, "--out", out) == 0
    assert sorted(p.name for p in (out / "face_parsers").iterdir()) == ["bisenet.json", "bisenet.safetensors"]


def test_a_generator_import_removes_what_a_killed_import_left(generator_file, files):
    run_dir = files / "run_killed_generator"
    ckpts = run_dir / "dmn" / "checkpoints"
    (ckpts / ".tmp_step_0000000_x1y2").mkdir(parents=True)  # a kill inside save_checkpoint
    (ckpts / ".tmp_step_0000000_x1y2" / "dmn.safetensors").write_bytes(b"half")
    (run_dir / "dmn" / ".config.json.ab12cd.tmp").write_bytes(b"{")
    A.import_authors(generator_file, run_dir, size=256)
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest.json", "step_0000000"]
    assert not list((run_dir / "dmn").glob(".*.tmp")) and not (run_dir / "dmn" / ".lock").exists()

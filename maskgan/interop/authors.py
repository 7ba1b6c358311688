"""Import the MaskGAN authors' released weights into the kit's networks.

The authors' inference demo (switchablenorms/CelebAMask-HQ, folder ``MaskGAN_demo``) ships a
generator ``latest_net_G.pth`` (512x512, CelebAMask-HQ); their training code also writes an alpha
blender (``*_net_B.pth``) and uses a MaskVAE. Each is a bare ``state_dict()`` written by
``torch.save`` (their ``save_network``), possibly with a ``module.`` prefix (DataParallel) and, from
PyTorch 0.4.0, without ``num_batches_tracked``. At the ``paper`` preset the kit's networks have
exactly their parameter counts; this module maps their keys onto the kit's, strictly:

* every key of their file is either imported or listed in :data:`DROPPED_KEYS` with the reason;
* every parameter of the kit's network must come from the file (``num_batches_tracked`` may be
  missing: it only counts training batches);
* shapes must agree; any problem is a :class:`~maskgan.errors.WeightsImportError` naming the keys.

Their modules and the kit's (DESIGN.md section 5):

* ``GlobalGenerator`` (``define_G(19, 3, 64, 'global', 4, 4, 1, 3, 'instance')``): backbone
  ``model.N`` -> :class:`~maskgan.nn.dmn.Backbone` (``backbone.*``); ``enc_label.{model, model_last}``
  -> :class:`~maskgan.nn.dmn.LabelEncoder`; ``enc_style.{model, model_middle, model_last}`` with
  ``sft1`` / ``sft2`` (``SFT_scale_conv1/2``, ``SFT_shift_conv1/2``) ->
  :class:`~maskgan.nn.dmn.StyleEncoder` with :class:`~maskgan.nn.layers.SFT` (gamma / beta);
* ``define_B(6, 3, 32, 3, 3)`` (``model.N``) -> :class:`~maskgan.nn.blender.AlphaBlender` (``net.*``);
* ``VAE(19, 32, 32, 1024)`` (``e1..e7``, ``bn1..bn13``, ``fc1`` mu, ``fc2`` logvar, ``d1..d8``) ->
  :class:`~maskgan.nn.maskvae.MaskVAE` (512x512 masks only).

**Style vector.** Their ``assign_adain_params`` walks the backbone's AdaIN layers in module order
(block 0 norm 1, block 0 norm 2, block 1 norm 1, ...) and gives each the next ``2C`` values: ``C``
"means" (the bias, Eq. 2's y) then ``C`` "stds" (the weight, Eq. 2's x). The kit's
:meth:`~maskgan.nn.dmn.Backbone.split_style` reads the same layout. :func:`_style_permutation`
does not assume it: it probes ``split_style`` with an index vector and would permute the rows of
the style encoder's last conv if the two layouts ever differed (today it is the identity).

**Feeding the imported networks.** Their demo GUI turns the drawn mask into ids through
``Normalize(0, 1/255)`` and ``.long()``; in float32 the ids 7, 13, 14, 15 truncate to 6, 12, 13, 14
(r_brow becomes l_brow, hair l_lip, hat hair, ear_r hat), so the demo's own outputs for those classes are not
what the generator was trained on (their training loader is exact). The kit feeds exact ids
(:func:`maskgan.labels.one_hot`). Their image preprocessing: PIL BICUBIC resize to 512, then
``(x / 255 - 0.5) / 0.5``, i.e. RGB in [-1, 1], the kit's convention.

    from maskgan.interop import import_authors
    import_authors("latest_net_G.pth", "runs/authors")       # then Editor.from_run("runs/authors")
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..checkpoint import sha256_file
from ..config import Config
from ..errors import WeightsImportError
from ..nn import build_blender, build_dmn, build_maskvae

__all__ = [
    "DROPPED_KEYS",
    "authors_blender_to_kit",
    "authors_generator_to_kit",
    "authors_vae_to_kit",
    "describe_weights",
    "faces_resample",
    "import_authors",
    "load_authors_blender",
    "load_authors_generator",
    "load_authors_vae",
    "map_state_dict",
    "paper_config",
    "read_state_dict",
]

KIND_GENERATOR, KIND_BLENDER, KIND_VAE = "authors-generator", "authors-blender", "authors-vae"

#: Keys of foreign files that are read and deliberately *not* imported: (kind, regex, reason).
#: Nothing else may be left over.
DROPPED_KEYS: tuple[tuple[str, str, str], ...] = (
    (KIND_GENERATOR, r"model\.\d+\.conv_block\.[01]\.norm\.running_(mean|var)",
     ("the AdaIN layers' dummy buffers: their AdaptiveInstanceNorm2d registers running_mean/running_var "
      "but always normalises with each instance's own statistics (F.batch_norm in training mode on "
      "repeated copies), so the buffers never reach the output; the kit's AdaIN is a function without buffers")),
)


# --- reading a foreign file ---------------------------------------------------------------------

def read_state_dict(path: Path | str) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, sha256 of the file)`` of a ``torch.save``-d state dict, read safely.

    Loaded with ``weights_only=True``: a file holding pickled objects (a whole model, an
    optimizer) is refused, as is anything that is not a flat dict of tensors. A ``module.`` prefix
    (DataParallel) is stripped. Errors are :class:`WeightsImportError` naming the file.
    """
    path = Path(path)
    expected = "a PyTorch state dict written by torch.save(net.state_dict(), path)"
    if path.is_dir():
        raise WeightsImportError(f"weights file {path} is a folder; name the file itself (e.g. "
                                 f"{path}/latest_net_G.pth), {expected}")
    if not path.is_file():
        raise WeightsImportError(f"weights file {path} does not exist; expected {expected}")
    try:
        digest = sha256_file(path)
    except OSError as e:
        raise WeightsImportError(f"weights file {path} cannot be read ({e.strerror}); check its permissions (or copy "
                                 f"it where you can read it)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure of torch.load means the same thing to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only load failed" in str(e).lower():
            raise WeightsImportError(
                f"{path} contains pickled Python objects (a whole model or optimizer?), which the kit refuses to "
                f"load because unpickling can run arbitrary code; expected {expected}. Re-save only the network's "
                f"state dict (torch.save(net.state_dict(), path)) where the file was made") from None
        raise WeightsImportError(
            f"{path} could not be read as a PyTorch weights file ({first}); it may be truncated (an "
            f"interrupted download?) or not a torch.save file at all. Expected {expected}; "
            f"file sha256 {digest}") from None
    if not isinstance(obj, Mapping):
        raise WeightsImportError(f"{path} holds a {type(obj).__name__}, not a dict of tensors; expected {expected}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        hint = ""
        if any(k in obj for k in ("state_dict", "model", "net", "netG")):
            hint = " (it looks like a training checkpoint that wraps the state dict: save that entry alone)"
        raise WeightsImportError(f"{path} is a dict but not of tensors: entries {_listing(bad)} are not tensors"
                                 f"{hint}; expected {expected}")
    return {k.removeprefix("module."): v for k, v in obj.items()}, digest


def describe_weights(sd: Mapping[str, torch.Tensor]) -> str | None:
    """A guess at which known network a state dict belongs to (used in error messages), or None."""
    keys = set(sd)
    if any(k.startswith("enc_style.") for k in keys):
        return "the authors' MaskGAN generator (latest_net_G.pth)"
    if {"e1.weight", "fc1.weight", "d1.weight"} <= keys:
        return "the authors' MaskVAE"
    if any(k.startswith(("scale0_layer", "layer0.")) for k in keys):
        return "the authors' discriminator (latest_net_D.pth), which the kit does not import"
    if "model.1.weight" in keys and sd["model.1.weight"].dim() == 4 and sd["model.1.weight"].shape[1] == 6:
        return "the authors' alpha blender (*_net_B.pth)"
    if any(k.startswith("cp.resnet.") for k in keys):
        return "a BiSeNet face parser (zllrunning/face-parsing.PyTorch, 79999_iter.pth)"
    if "center.conv1.0.weight" in keys:
        return "the CelebAMask-HQ authors' face-parsing U-Net (face_parsing/model.pth)"
    return None


# --- strict mapping -----------------------------------------------------------------------------

def _listing(keys, limit: int = 12) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ... and ' + str(len(keys) - limit) + ' more' if len(keys) > limit else ''}] ({len(keys)})"


def _prefix_map(target_keys, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """kit key -> source key from ``(kit module path, source module path)`` pairs."""
    out = {}
    for kit_prefix, src_prefix in pairs:
        for key in target_keys:
            if key.startswith(kit_prefix + "."):
                out[key] = src_prefix + key[len(kit_prefix):]
    uncovered = [k for k in target_keys if k not in out]
    if uncovered:  # a bug of this module, not of the user's file
        raise RuntimeError(f"internal: no mapping rule for the kit's keys {uncovered[:5]}")
    return out


def _meta_state(build) -> dict[str, torch.Tensor]:
    """Shapes and dtypes of a kit network's state dict, without allocating it."""
    with torch.device("meta"):
        return build().state_dict()


def map_state_dict(sd: Mapping[str, torch.Tensor], key_map: Mapping[str, str], target: Mapping[str, torch.Tensor],
                   *, kind: str, source: str, what: str) -> dict[str, torch.Tensor]:
    """Rename ``sd`` into the kit's keys (``key_map``: kit key -> source key), strictly.

    ``target`` gives the kit's shapes and dtypes. Keys of ``sd`` outside ``key_map`` must match a
    :data:`DROPPED_KEYS` entry of ``kind``; a missing ``num_batches_tracked`` becomes 0. Raises a
    :class:`WeightsImportError` listing every unexpected, missing or mis-shaped key.
    """
    drops = [re.compile(rx) for k, rx, _ in DROPPED_KEYS if k == kind]
    wanted = set(key_map.values())
    unexpected = sorted(k for k in sd if k not in wanted and not any(rx.fullmatch(k) for rx in drops))
    missing = [src for kit, src in key_map.items() if src not in sd and not kit.endswith("num_batches_tracked")]
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing keys {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_listing(unexpected)}")
        guess = describe_weights(sd)
        hint = f" (this file looks like {guess})" if guess and not _same_kind(guess, kind) else ""
        raise WeightsImportError(f"{source} does not fit {what}{hint}: {'; '.join(parts)}")
    out, wrong = {}, []
    for kit_key, src_key in key_map.items():
        ref = target[kit_key]
        if src_key not in sd:  # num_batches_tracked of PyTorch 0.4.0 files
            out[kit_key] = torch.zeros((), dtype=ref.dtype)
            continue
        value = sd[src_key]
        if tuple(value.shape) != tuple(ref.shape):
            wrong.append(f"{src_key} (kit {kit_key}) has shape {tuple(value.shape)} in the file, "
                         f"the kit expects {tuple(ref.shape)}")
            continue
        out[kit_key] = value.to(ref.dtype) if value.is_floating_point() and ref.is_floating_point() else value
    if wrong:
        more = f" (and {len(wrong) - 6} more)" if len(wrong) > 6 else ""
        raise WeightsImportError(f"{source} does not fit {what} (was it trained with other widths?): "
                                 f"{'; '.join(wrong[:6])}{more}")
    return out


def _same_kind(guess: str, kind: str) -> bool:
    words = {KIND_GENERATOR: "generator", KIND_BLENDER: "blender", KIND_VAE: "MaskVAE",
             "bisenet": "BiSeNet", "authors-unet": "U-Net"}
    return words.get(kind, "\0") in guess


def paper_config(size: int = 512) -> Config:
    """The ``paper`` preset at ``size`` x ``size``: the authors' widths."""
    return Config.preset("paper").with_overrides({"data.size": int(size)})


# --- the authors' generator -> the kit's DMN ---------------------------------------------------

def _generator_pairs(cfg: Config) -> list[tuple[str, str]]:
    """(kit module, their module) for GlobalGenerator; indices follow their ``nn.Sequential`` lists."""
    d = cfg.model.dmn
    n, nb, ne = d.n_down, d.n_blocks, d.enc_n_down
    # model: [pad, stem conv, IN, ReLU] + n x [conv, IN, ReLU] + nb blocks + n x [convT, IN, ReLU] + [pad, conv, tanh]
    first_block = 4 + 3 * n
    first_up = first_block + nb
    pairs = [("backbone.stem.1", "model.1")]
    pairs += [(f"backbone.down.{3 * i}", f"model.{4 + 3 * i}") for i in range(n)]
    for b in range(nb):
        pairs += [(f"backbone.blocks.{b}.conv{j + 1}", f"model.{first_block + b}.conv_block.{j}.conv") for j in (0, 1)]
    pairs += [(f"backbone.up.{3 * i}", f"model.{first_up + 3 * i}") for i in range(n)]
    pairs.append(("backbone.head.1", f"model.{first_up + 3 * n + 1}"))
    # label encoder: model = 3 ConvBlocks (feature A); model_last = [ReLU] + ConvBlocks (feature B)
    pairs += [(f"label_encoder.to_a.{i}.1", f"enc_label.model.{i}.conv") for i in range(3)]
    pairs += [(f"label_encoder.to_b.{i}.1", f"enc_label.model_last.{i}.conv") for i in range(1, ne - 1)]
    # style encoder: model = 3 ConvBlocks, sft1, model_middle, sft2, model_last = [avg pool, 1x1 conv]
    pairs += [(f"style_encoder.head.{i}.1", f"enc_style.model.{i}.conv") for i in range(3)]
    pairs += [(f"style_encoder.middle.{i}.1", f"enc_style.model_middle.{i}.conv") for i in range(ne - 2)]
    for kit_sft, their_sft in (("sft_a", "sft1"), ("sft_b", "sft2")):
        for kit_branch, their_branch in (("gamma", "scale"), ("beta", "shift")):
            pairs += [(f"style_encoder.{kit_sft}.{kit_branch}.0", f"enc_style.{their_sft}.SFT_{their_branch}_conv1"),
                      (f"style_encoder.{kit_sft}.{kit_branch}.2", f"enc_style.{their_sft}.SFT_{their_branch}_conv2")]
    pairs.append(("style_encoder.to_params", "enc_style.model_last.1"))
    return pairs


def _style_permutation(cfg: Config) -> torch.Tensor | None:
    """Row order that turns their style vector into the kit's, or None when they agree.

    Theirs: AdaIN layer ``k`` (module order) reads ``[2kC, 2kC + C)`` as the mean (beta) and
    ``[2kC + C, 2kC + 2C)`` as the std (gamma). The kit's layout is read off
    :meth:`Backbone.split_style` applied to ``arange(P)``.
    """
    with torch.device("meta"):
        backbone = build_dmn(cfg).backbone
    c, p = backbone.dim, backbone.n_style_params
    probe = torch.arange(p, dtype=torch.float64).unsqueeze(0)
    src = torch.empty(p, dtype=torch.long)
    for b, norms in enumerate(backbone.split_style(probe)):
        for j, (gamma, beta) in enumerate(norms):
            k = 2 * b + j
            src[beta[0].long()] = torch.arange(2 * k * c, 2 * k * c + c)
            src[gamma[0].long()] = torch.arange(2 * k * c + c, 2 * k * c + 2 * c)
    return None if torch.equal(src, torch.arange(p)) else src


def authors_generator_to_kit(sd: Mapping[str, torch.Tensor], cfg: Config | None = None, *,
                             source: str = "the state dict") -> dict[str, torch.Tensor]:
    """Their ``GlobalGenerator`` state dict -> the state dict of ``build_dmn(cfg)`` (default: ``paper``)."""
    cfg = cfg or paper_config()
    target = _meta_state(lambda: build_dmn(cfg))
    out = map_state_dict(sd, _prefix_map(target, _generator_pairs(cfg)), target, kind=KIND_GENERATOR,
                         source=source, what=f"the kit's DenseMappingNetwork ({_widths(cfg.model.dmn)})")
    perm = _style_permutation(cfg)
    if perm is not None:
        for key in ("style_encoder.to_params.weight", "style_encoder.to_params.bias"):
            out[key] = out[key][perm]
    return out


def _widths(section) -> str:
    return ", ".join(f"{k}={v}" for k, v in vars(section).items() if isinstance(v, int))


# --- the authors' blender and VAE ----------------------------------------------------------------

def authors_blender_to_kit(sd: Mapping[str, torch.Tensor], cfg: Config | None = None, *,
                           source: str = "the state dict") -> dict[str, torch.Tensor]:
    """Their ``BlendGenerator`` (``define_B``) state dict -> the state dict of ``build_blender(cfg)``."""
    cfg = cfg or paper_config()
    b = cfg.model.blender
    n, nb = b.n_down, b.n_blocks
    first_block = 4 + 3 * n
    first_up = first_block + nb
    # kit: net = [stem, down, block x nb, up, head]; theirs: one flat Sequential like the generator's
    pairs = [("net.0.1", "model.1")] + [(f"net.1.{3 * i}", f"model.{4 + 3 * i}") for i in range(n)]
    for k in range(nb):
        pairs += [(f"net.{2 + k}.body.1", f"model.{first_block + k}.conv_block.0.conv"),
                  (f"net.{2 + k}.body.5", f"model.{first_block + k}.conv_block.1.conv")]
    pairs += [(f"net.{2 + nb}.{3 * i}", f"model.{first_up + 3 * i}") for i in range(n)]
    pairs.append((f"net.{3 + nb}.1", f"model.{first_up + 3 * n + 1}"))
    target = _meta_state(lambda: build_blender(cfg))
    return map_state_dict(sd, _prefix_map(target, pairs), target, kind=KIND_BLENDER, source=source,
                          what=f"the kit's AlphaBlender ({_widths(b)})")


def _check_vae_size(cfg: Config) -> None:
    if cfg.data.size != 512:
        raise WeightsImportError(
            f"the authors' MaskVAE works on 512x512 masks only (7 stride-2 convs down to 4x4); the kit was asked "
            f"for size {cfg.data.size}. Import the VAE with size 512 (--size 512), or leave it out")


def authors_vae_to_kit(sd: Mapping[str, torch.Tensor], cfg: Config | None = None, *,
                       source: str = "the state dict") -> dict[str, torch.Tensor]:
    """Their ``VAE(19, 32, 32, 1024)`` state dict -> the state dict of ``build_maskvae(cfg)`` (512x512)."""
    cfg = cfg or paper_config()
    _check_vae_size(cfg)
    depth = int(math.log2(cfg.data.size // 4))
    pairs = []
    for i in range(depth):  # encoder.i = [conv, BatchNorm, LeakyReLU]
        pairs += [(f"encoder.{i}.0", f"e{i + 1}"), (f"encoder.{i}.1", f"bn{i + 1}")]
    pairs += [("fc_mu", "fc1"), ("fc_logvar", "fc2"), ("fc_dec", "d1")]
    for i in range(depth - 1):  # decoder.i = [upsample, replication pad, conv, BatchNorm, LeakyReLU]
        pairs += [(f"decoder.{i}.2", f"d{i + 2}"), (f"decoder.{i}.3", f"bn{depth + 1 + i}")]
    pairs.append((f"decoder.{depth - 1}.2", f"d{depth + 1}"))
    target = _meta_state(lambda: build_maskvae(cfg))
    return map_state_dict(sd, _prefix_map(target, pairs), target, kind=KIND_VAE, source=source,
                          what=f"the kit's MaskVAE ({_widths(cfg.model.maskvae)}, size={cfg.data.size})")


# --- building imported networks ------------------------------------------------------------------

def _materialise(build, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build a kit network on the meta device and give it ``state`` (no random initialisation)."""
    with torch.device("meta"):
        net = build()
    net.load_state_dict(state, strict=True, assign=True)
    leftover = [k for k, v in net.state_dict().items() if v.is_meta]
    if leftover:  # pragma: no cover - a state dict always covers every persistent tensor
        raise RuntimeError(f"internal: {leftover[:5]} were not loaded")
    return net.eval()


def _load(kind: str, path, cfg: Config, convert, build) -> tuple[torch.nn.Module, dict]:
    sd, digest = read_state_dict(path)
    net = _materialise(build, convert(sd, cfg, source=str(path)))
    return net, {"kind": kind, "path": str(Path(path).resolve()), "sha256": digest}


def load_authors_generator(path, cfg: Config | None = None) -> tuple[torch.nn.Module, dict]:
    """``(DenseMappingNetwork in eval mode, {"kind", "path", "sha256"})`` from ``latest_net_G.pth``."""
    cfg = cfg or paper_config()
    return _load(KIND_GENERATOR, path, cfg, authors_generator_to_kit, lambda: build_dmn(cfg))


def load_authors_blender(path, cfg: Config | None = None) -> tuple[torch.nn.Module, dict]:
    """``(AlphaBlender in eval mode, info)`` from their blender file."""
    cfg = cfg or paper_config()
    return _load(KIND_BLENDER, path, cfg, authors_blender_to_kit, lambda: build_blender(cfg))


def load_authors_vae(path, cfg: Config | None = None) -> tuple[torch.nn.Module, dict]:
    """``(MaskVAE in eval mode, info)`` from their VAE file (512x512 masks)."""
    cfg = cfg or paper_config()
    _check_vae_size(cfg)
    return _load(KIND_VAE, path, cfg, authors_vae_to_kit, lambda: build_maskvae(cfg))


# --- writing a run directory ---------------------------------------------------------------------

def _write_stage(run_dir: Path, stage: str, nets: dict[str, torch.nn.Module], cfg: Config, imported: dict) -> Path:
    """The one place that writes imported networks into a run directory: stage ``stage`` at step 0."""
    from ..checkpoint import StageLock, clean_leftovers, save_checkpoint
    stage_dir = Path(run_dir) / stage
    with StageLock(stage_dir):  # as training does: one writer, and what a killed import left is removed
        clean_leftovers(stage_dir)
        return save_checkpoint(stage_dir, 0, nets, {}, {"stage": stage, "config": cfg.to_dict(), "imported": imported})


def _stage_is_taken(run_dir: Path, stage: str) -> bool:
    """Whether ``run_dir/stage`` already holds a checkpoint (which an import must not replace)."""
    from ..checkpoint import list_checkpoints
    return bool(list_checkpoints(Path(run_dir) / stage))


def import_authors(generator, run_dir, *, blender=None, vae=None, size: int = 512) -> dict:
    """Write the authors' networks as a run directory that :meth:`maskgan.editing.Editor.from_run` loads.

    * stage ``dmn`` (step 0): ``dmn.safetensors`` from ``generator`` and, when given,
      ``blender.safetensors`` from ``blender`` (so EBST can continue from both);
    * stage ``vae`` (step 0): ``maskvae.safetensors`` from ``vae`` (512x512 only).

    The config is the ``paper`` preset at ``size``; each ``config.json`` records under
    ``"imported"`` the import date and, per network, the source file, its sha256 and its kind.
    Every file is read and checked before anything is written; a stage that already holds a
    checkpoint is refused (its training history would be overwritten). Returns what was written.
    """
    run_dir = Path(run_dir)
    try:
        cfg = paper_config(size)
        with torch.device("meta"):
            build_dmn(cfg), build_blender(cfg)  # size checks before any file is read
    except ValueError as e:
        raise WeightsImportError(f"size {size} does not fit the paper networks: {e}") from None
    if vae is not None:
        _check_vae_size(cfg)
    stages = ["dmn"] + (["vae"] if vae is not None else [])
    for stage in stages:
        if _stage_is_taken(run_dir, stage):
            raise WeightsImportError(f"{run_dir / stage} already holds a checkpoint; import into a new --run-dir "
                                     f"(or delete {run_dir / stage} first)")
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    source = "switchablenorms/CelebAMask-HQ, MaskGAN_demo"

    dmn_nets, dmn_files = {}, {}
    dmn_nets["dmn"], dmn_files["dmn"] = load_authors_generator(generator, cfg)
    if blender is not None:
        dmn_nets["blender"], dmn_files["blender"] = load_authors_blender(blender, cfg)
    vae_net = vae_info = None
    if vae is not None:
        vae_net, vae_info = load_authors_vae(vae, cfg)

    written = {"run_dir": str(run_dir), "size": int(size), "date": date, "stages": {}}
    ckpt = _write_stage(run_dir, "dmn", dmn_nets, cfg, {"date": date, "source": source, "files": dmn_files})
    written["stages"]["dmn"] = {"checkpoint": str(ckpt), "files": dmn_files,
                                "weights": sorted(f"{name}.safetensors" for name in dmn_nets)}
    if vae_net is not None:
        ckpt = _write_stage(run_dir, "vae", {"maskvae": vae_net}, cfg,
                            {"date": date, "source": source, "files": {"maskvae": vae_info}})
        written["stages"]["vae"] = {"checkpoint": str(ckpt), "files": {"maskvae": vae_info},
                                    "weights": ["maskvae.safetensors"]}
    return written


def faces_resample(record: dict) -> str:
    """How to resize faces for the generator of a checkpoint (its ``config.json`` record):
    ``"bicubic"`` when it is the authors' generator imported by :func:`import_authors` (their demo
    resizes its inputs with BICUBIC, DESIGN.md section 5: read faces as their pipeline does), else
    ``"lanczos"``, the kit's own (its training data are prepared with it)."""
    files = (record.get("imported") or {}).get("files") or {}
    return "bicubic" if any(f.get("kind") == KIND_GENERATOR for f in files.values() if isinstance(f, dict)) \
        else "lanczos"

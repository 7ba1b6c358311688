"""Typed configuration of the kit: dataclasses with three named presets.

* ``paper``: the authors' widths at 512x512 on CelebAMask-HQ (the parity configuration: its
  networks have exactly the demo's parameter counts, see DESIGN.md section 2);
* ``cpu``: small widths at 64x64 on SynthFaces, so the whole method trains within minutes on a
  laptop CPU;
* ``smoke``: tiny (32x32) for tests and CI.

::

    cfg = Config.preset("cpu").with_overrides({"model.dmn.ngf": 32, "data.size": 128})
    cfg2 = Config.from_dict(cfg.to_dict())          # JSON round trip; cfg2 == cfg

Every value is type-checked when a config is built from a dict or overridden, and unknown keys
are errors that list the valid ones. The sections are generic dataclasses: adding a section
(e.g. a ``train: TrainConfig`` field on :class:`Config`, with per-preset values in the preset
functions) needs no change to the dict / override machinery; dicts saved before a field existed
still load (missing keys take their defaults).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from .errors import ConfigError
from .io import atomic_write_json, read_json

__all__ = [
    "MaskVAEConfig", "DMNConfig", "BlenderConfig", "DiscriminatorConfig", "LossConfig", "ModelConfig",
    "DataConfig", "TrainConfig", "CadenceConfig", "ParserConfig", "EvalConfig", "Config", "make_config",
    "PRESETS", "DATASETS", "GAN_MODES", "ConfigError", "MOVED_KEYS", "migrate", "flatten",
]

DATASETS: tuple[str, ...] = ("synthfaces", "celebamask-hq")
GAN_MODES: tuple[str, ...] = ("lsgan", "hinge", "original")  # mirrored in maskgan.losses
VGG_SOURCES: tuple[str, ...] = ("imagenet", "auto", "random", "none")
AMP_MODES: tuple[str, ...] = ("none", "bf16", "fp16")
ENCODER_INITS: tuple[str, ...] = ("kaiming", "demo")  # mirrored in maskgan.nn.layers.init_weights




def _positive(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise ConfigError(f"{type(obj).__name__}.{n} must be >= 1, got {v}")


@dataclass
class MaskVAEConfig:
    """MaskVAE (Sec. 3.2); its input size is ``DataConfig.size`` (a power of two)."""
    base_ch: int = 32  # width of the first encoder conv, doubled at every stride-2 conv (demo: 32)
    latent_dim: int = 1024  # size of the latent code z (demo: 1024)

    def __post_init__(self):
        _positive(self, "base_ch", "latent_dim")


@dataclass
class DMNConfig:
    """Dense Mapping Network (Sec. 3.1, Fig. 2)."""
    ngf: int = 64  # backbone width after the 7x7 stem; bottleneck width is ngf * 2**n_down (demo: 64)
    n_down: int = 4  # backbone stride-2 downsamplings (demo: 4)
    n_blocks: int = 4  # AdaIN residual blocks in the backbone (demo: 4)
    enc_ch: int = 16  # first width of the style and label encoders; SFT width is 4 * enc_ch (demo: 16)
    enc_n_down: int = 5  # encoder stride-2 convs: 2 before SFT A, the rest before SFT B (demo: 5)
    encoder_init: str = "kaiming"  # style/label encoder conv init: "kaiming" (ours) or "demo" (N(0, 0.02))

    def __post_init__(self):
        _positive(self, "ngf", "n_down", "n_blocks", "enc_ch")
        if self.encoder_init not in ENCODER_INITS:
            raise ConfigError(f"DMNConfig.encoder_init {self.encoder_init!r} is not one of {', '.join(ENCODER_INITS)}")
        if self.enc_n_down < 3:
            raise ConfigError(f"DMNConfig.enc_n_down must be >= 3 (2 convs before SFT A, >= 1 before SFT B), got {self.enc_n_down}")


@dataclass
class BlenderConfig:
    """Alpha blender of EBST (Algorithm 1, stage II)."""
    ngf: int = 32  # width after the 7x7 stem (demo: 32)
    n_down: int = 3  # stride-2 downsamplings (demo: 3)
    n_blocks: int = 3  # residual blocks with InstanceNorm (demo: 3)

    def __post_init__(self):
        _positive(self, "ngf", "n_down", "n_blocks")


@dataclass
class DiscriminatorConfig:
    """Multi-scale PatchGAN (Sec. 3.4) on concat(one-hot mask, image)."""
    ndf: int = 64  # width of the first conv (demo: 64)
    n_layers: int = 3  # stride layers per scale (demo: 3)
    num_D: int = 2  # number of scales (demo: 2)
    max_ch: int = 512  # width cap (Pix2PixHD: 512)

    def __post_init__(self):
        _positive(self, "ndf", "n_layers", "num_D", "max_ch")


@dataclass
class LossConfig:
    """Loss terms and weights (Eq. 3-9)."""
    gan_mode: str = "lsgan"  # "lsgan" (demo default), "hinge" or "original" (Eq. 7's log form)
    lambda_feat: float = 10.0  # weight of discriminator feature matching (Eq. 6, demo: 10)
    lambda_percept: float = 10.0  # weight of the VGG perceptual loss (Eq. 6, demo: 10)
    lambda_l1: float = 0.0  # weight of a pixel L1 term |I^out - I^t| (not in the paper: 0; the cpu preset's stand-in for VGG)
    lambda_kl: float = 1e-5  # weight of the MaskVAE KL term (Eq. 3, paper: 1e-5)
    vae_class_balance: float = 0.0  # MaskVAE CE class weights freq**-balance (paper: 0, plain CE; cpu preset: 0.5)
    vgg_weights: str = "imagenet"  # "imagenet", "auto" (imagenet if available, else random), "random", "none", or a file path
    vgg_normalize: bool = True  # ImageNet mean/std on VGG inputs (a deliberate fix; the demo feeds [-1, 1] as is: False)
    vgg_layer_weights: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # relu1_1..relu5_1 weights

    def __post_init__(self):
        if self.gan_mode not in GAN_MODES:
            raise ConfigError(f"LossConfig.gan_mode {self.gan_mode!r} is not one of {', '.join(GAN_MODES)}")
        for n in ("lambda_feat", "lambda_percept", "lambda_l1", "lambda_kl", "vae_class_balance"):
            if getattr(self, n) < 0:
                raise ConfigError(f"LossConfig.{n} must be >= 0, got {getattr(self, n)}")
        if len(self.vgg_layer_weights) != 5:
            raise ConfigError(f"LossConfig.vgg_layer_weights needs 5 values (relu1_1..relu5_1), got {len(self.vgg_layer_weights)}")


@dataclass
class ModelConfig:
    """All networks and their losses."""
    maskvae: MaskVAEConfig = field(default_factory=MaskVAEConfig)  # mask manifold (Sec. 3.2)
    dmn: DMNConfig = field(default_factory=DMNConfig)  # mask-to-image generator (Sec. 3.1)
    blender: BlenderConfig = field(default_factory=BlenderConfig)  # EBST alpha blender
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # multi-scale PatchGAN
    loss: LossConfig = field(default_factory=LossConfig)  # loss kinds and weights


@dataclass
class DataConfig:
    """Which prepared dataset folder to read (layout: maskgan.data.layout)."""
    dataset: str = "synthfaces"  # "synthfaces" (rendered on the fly) or "celebamask-hq" (a prepared folder)
    data_root: str = ""  # prepared folder (meta.json, train/, val/, test/); unused by on-the-fly SynthFaces
    synth_train: int = 4000  # SynthFaces: distinct faces in the train split (val/test: synth_eval each)
    synth_eval: int = 200  # SynthFaces: faces in each of val and test
    size: int = 64  # image and mask side in pixels (square)
    num_workers: int = 0  # DataLoader worker processes (0 = load in the main process)
    flip: bool = True  # random horizontal flip with left/right label swap (training only)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ConfigError(f"DataConfig.dataset {self.dataset!r} is not one of {', '.join(DATASETS)}")
        _positive(self, "size", "synth_train", "synth_eval")
        if self.num_workers < 0:
            raise ConfigError(f"DataConfig.num_workers must be >= 0, got {self.num_workers}")


@dataclass
class TrainConfig:
    """Optimisation of the training stages (MaskVAE, DMN stage I, EBST; Algorithm 1): what changes the weights.

    The step counts set each stage's LR schedule (constant, then a linear decay to 0 at the last
    step). A finished run is trained longer with ``--extend-to N``, which rebuilds the schedule
    for the new total and records it; it is never trained past its schedule at LR 0.
    """
    batch_size: int = 1  # DMN / EBST batch per process (demo: 1)
    vae_batch_size: int = 16  # MaskVAE batch per process
    vae_steps: int = 100_000  # MaskVAE pretraining steps
    dmn_steps: int = 4_836_600  # DMN stage-I pretraining steps (demo: 200 epochs x 24,183 images)
    ebst_steps: int = 4_836_600  # EBST iterations, each one stage-I and one stage-II update
    vae_lr: float = 2e-4  # Adam learning rate of the MaskVAE
    lr: float = 5e-5  # Adam learning rate of G, D and G+blender (demo: 5e-5)
    betas: tuple[float, ...] = (0.5, 0.999)  # Adam betas (demo: 0.5, 0.999)
    lr_decay_fraction: float = 0.5  # last fraction of steps with linear decay to 0 (demo: 100 + 100 epochs)
    lambda_inter: float = 2.5  # EBST: z_inter = z_t + (z_ref - z_t) / lambda_inter (Algorithm 1)
    amp: str = "none"  # mixed precision: "none", "bf16" (autocast, on CUDA or a CPU with bf16 units), "fp16" (CUDA)
    channels_last: bool = False  # channels_last memory format for nets and images (speed only)
    compile: bool = False  # torch.compile the networks (speed only)

    def __post_init__(self):
        _positive(self, "batch_size", "vae_batch_size", "vae_steps", "dmn_steps", "ebst_steps")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"TrainConfig.amp {self.amp!r} is not one of {', '.join(AMP_MODES)}")
        if not 0.0 <= self.lr_decay_fraction <= 1.0:
            raise ConfigError(f"TrainConfig.lr_decay_fraction must be in [0, 1], got {self.lr_decay_fraction}")
        if len(self.betas) != 2:
            raise ConfigError(f"TrainConfig.betas needs 2 values, got {len(self.betas)}")
        if self.lambda_inter <= 0:
            raise ConfigError(f"TrainConfig.lambda_inter must be > 0, got {self.lambda_inter}")
        for n in ("vae_lr", "lr"):
            if getattr(self, n) <= 0:
                raise ConfigError(f"TrainConfig.{n} must be > 0, got {getattr(self, n)}")


@dataclass
class CadenceConfig:
    """How often training reports and saves. Never part of a run's identity: change it on resume."""
    log_every: int = 10  # steps between log.jsonl lines
    sample_every: int = 1000  # steps between sample grids in <stage>/samples/
    checkpoint_every: int = 5000  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 2  # how many checkpoints to keep per stage (the older ones are the fallback)
    tensorboard: bool = False  # also log to TensorBoard (if installed)

    def __post_init__(self):
        _positive(self, "log_every", "sample_every", "checkpoint_every", "keep_checkpoints")


@dataclass
class ParserConfig:
    """The face parser that scores generated faces (Sec. 4; stage ``parser``, maskgan.train.parser)."""
    steps: int = 20_000  # training steps
    batch_size: int = 8  # batch per process
    lr: float = 1e-3  # Adam learning rate
    base: int = 16  # FaceParser width of the first U-Net level
    depth: int = 4  # FaceParser 2x downsamplings (image sides must be multiples of 2**depth)
    balance: float = 0.5  # class weights freq**-balance in the cross-entropy (0: unweighted)

    def __post_init__(self):
        _positive(self, "steps", "batch_size", "base", "depth")
        if self.balance < 0:
            raise ConfigError(f"ParserConfig.balance must be >= 0, got {self.balance}")
        if self.lr <= 0:
            raise ConfigError(f"ParserConfig.lr must be > 0, got {self.lr}")


@dataclass
class EvalConfig:
    """How much of the test split the evaluation reads (maskgan.evaluation). Never blocks a resume."""
    faces: int = 1000  # test faces for reconstruction, mask fidelity and SWD/FID
    edits: int = 100  # SynthFaces edit pairs per edit family for edit fidelity (0: skip)

    def __post_init__(self):
        _positive(self, "faces")
        if self.edits < 0:
            raise ConfigError(f"EvalConfig.edits must be >= 0, got {self.edits}")


@dataclass
class Config:
    """The whole configuration, by concern.

    A run's *identity* (what must match to resume a stage) is what changes the trained weights:
    ``model``, ``data`` (but not ``num_workers``), ``train`` (but not step counts, which set the
    schedule, see :class:`TrainConfig`) and ``seed``; each stage names the keys it depends on
    (:mod:`maskgan.stages`). ``cadence``, ``eval`` and ``device`` never block a resume.
    """
    model: ModelConfig = field(default_factory=ModelConfig)  # networks and losses
    data: DataConfig = field(default_factory=DataConfig)  # dataset
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation of the training stages
    cadence: CadenceConfig = field(default_factory=CadenceConfig)  # logging, samples, checkpoints
    parser: ParserConfig = field(default_factory=ParserConfig)  # the evaluation's face parser
    eval: EvalConfig = field(default_factory=EvalConfig)  # evaluation sample counts
    seed: int = 0  # seed for weight init, data order, and random VGG weights
    device: str = "auto"  # "auto" (cuda, else mps, else cpu), "cpu", "cuda", "cuda:1", "mps"

    def __post_init__(self):
        if not (self.device in ("auto", "cpu", "mps") or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f"Config.device {self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")

    # --- presets --------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> "Config":
        """A named preset: ``"paper"``, ``"cpu"`` or ``"smoke"``."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
        return PRESETS[name]()

    # --- dict / JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain nested dict of JSON types (tuples become lists)."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Inverse of :meth:`to_dict`, type-checked; unknown keys raise, missing keys take defaults.
        Dicts written before the config was split by concern (:data:`MOVED_KEYS`) are migrated."""
        return _from_dict(cls, migrate(data), "")

    def save(self, path) -> None:
        """Write the config as JSON, atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "Config":
        try:
            return cls.from_dict(read_json(path))
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"{path}: {e}") from None

    # --- overrides ------------------------------------------------------------------------
    def with_overrides(self, overrides: dict[str, object]) -> "Config":
        """A new config with dotted keys replaced, e.g. ``{"model.dmn.ngf": 32, "data.size": 64}``.

        A key naming a whole section takes a dict and updates only the keys it gives
        (``{"model.loss": {"gan_mode": "hinge"}}``). Values are type-checked.
        """
        data = self.to_dict()
        valid = valid_keys(type(self))
        for key, value in overrides.items():
            parts = key.split(".")
            node = data
            for i, p in enumerate(parts):
                if not isinstance(node, dict) or p not in node:
                    if key in MOVED_KEYS:
                        raise ConfigError(f"config key {key!r} is now {MOVED_KEYS[key]!r}")
                    raise ConfigError(f"unknown config key {key!r}; valid keys are: {', '.join(valid)}")
                if i == len(parts) - 1:
                    if isinstance(node[p], dict) and isinstance(value, dict):
                        node[p] = _merge(node[p], _to_plain(value))  # a section: update the given keys
                    else:
                        node[p] = _to_plain(value)
                else:
                    node = node[p]
        return type(self).from_dict(data)

    def torch_device(self):
        """The ``torch.device`` that ``device`` names (``"auto"``: cuda, else mps, else cpu)."""
        from .device import resolve_device
        return resolve_device(self.device)


#: Keys that moved when the config was split by concern: old dotted key -> new dotted key.
MOVED_KEYS: dict[str, str] = {
    **{f"train.{k}": f"cadence.{k}" for k in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                                             "tensorboard")},
    **{f"train.parser_{k}": f"parser.{k}" for k in ("steps", "batch_size", "lr", "base", "depth", "balance")},
    "train.eval_faces": "eval.faces", "train.eval_edits": "eval.edits",
}


def migrate(data: dict) -> dict:
    """A config dict of an older kit with its moved keys (:data:`MOVED_KEYS`) in their new sections."""
    if not isinstance(data, dict) or not isinstance(data.get("train"), dict):
        return data
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        if key in out[section]:
            new_section, new_key = new.split(".")
            out.setdefault(new_section, {})
            out[new_section] = {**out[new_section], new_key: out[section].pop(key)}
    return out


# --- generic dataclass <-> dict with type checks ----------------------------------------------

def _to_plain(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value, tp, where: str):
    """Check ``value`` against the annotation ``tp`` (ints are accepted where floats are expected)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (dict) for {tp.__name__}, got {type(value).__name__}")
        return _from_dict(tp, value, where + ".")
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} is not a {_type_name(tp)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is None:
            raise ConfigError(f"{where}: unsupported annotation {tp}")  # pragma: no cover
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the annotations above are used
        raise ConfigError(f"{where}: unsupported annotation {tp}")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _from_dict(cls, data, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: expected a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}; valid keys are: "
                          f"{', '.join(prefix + k for k in valid_keys(cls))}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def valid_keys(cls) -> list[str]:
    """All dotted leaf keys of a config dataclass, e.g. ``["model.maskvae.base_ch", ...]``."""
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys += [f"{f.name}.{k}" for k in valid_keys(tp)]
        else:
            keys.append(f.name)
    return keys


# --- presets ------------------------------------------------------------------------------------

def _paper() -> Config:
    """The authors' demo widths at 512x512 on CelebAMask-HQ (parameter parity with the demo)."""
    return Config(
        model=ModelConfig(),  # every default above is the demo's value
        data=DataConfig(dataset="celebamask-hq", data_root="data/celebamask-hq", size=512, num_workers=4),
        train=TrainConfig(),  # every default above is the demo's value (or, for the MaskVAE, ours)
        # cadence, parser and eval: the defaults above
    )


def _cpu() -> Config:
    """64x64 SynthFaces with small widths: a DMN forward+backward at batch 8 in ~0.1 s on 2 cores."""
    return Config(
        model=ModelConfig(
            maskvae=MaskVAEConfig(base_ch=16, latent_dim=256),
            dmn=DMNConfig(ngf=16, n_down=3, n_blocks=4, enc_ch=8, enc_n_down=4),
            blender=BlenderConfig(ngf=8, n_down=2, n_blocks=2),
            discriminator=DiscriminatorConfig(ndf=16, n_layers=3, num_D=2),
            # No VGG: offline there are no ImageNet weights, and a random-weight VGG made no visible
            # difference while taking 55% of a stage-I step. A pixel L1 term stands in for it
            # (a deviation from Eq. 6; the paper preset keeps the VGG term and no L1).
            # MaskVAE: class-weighted CE (freq**-0.5), or thin parts (brows, lips) vanish at 64 px
            loss=LossConfig(vgg_weights="none", lambda_percept=0.0, lambda_l1=10.0, vae_class_balance=0.5),
        ),
        data=DataConfig(dataset="synthfaces", size=64, synth_train=4000, synth_eval=200),
        train=TrainConfig(batch_size=8, vae_batch_size=32, vae_steps=700, dmn_steps=1500, ebst_steps=400,
                          vae_lr=1e-3, lr=2e-4, lr_decay_fraction=0.3),
        cadence=CadenceConfig(log_every=10, sample_every=200, checkpoint_every=200),
        parser=ParserConfig(steps=500, batch_size=16, lr=4e-3, base=8, depth=3),
        eval=EvalConfig(faces=100, edits=40),
    )


def _smoke() -> Config:
    """32x32, tiny widths: for tests and CI (seconds)."""
    return Config(
        model=ModelConfig(
            maskvae=MaskVAEConfig(base_ch=8, latent_dim=32),
            dmn=DMNConfig(ngf=8, n_down=3, n_blocks=2, enc_ch=4, enc_n_down=3),
            blender=BlenderConfig(ngf=4, n_down=2, n_blocks=1),
            discriminator=DiscriminatorConfig(ndf=8, n_layers=2, num_D=2),
            loss=LossConfig(vgg_weights="random", lambda_l1=1.0, vae_class_balance=0.5),  # every loss term runs in CI
        ),
        data=DataConfig(dataset="synthfaces", size=32, synth_train=16, synth_eval=8),
        train=TrainConfig(batch_size=2, vae_batch_size=4, vae_steps=4, dmn_steps=4, ebst_steps=2, vae_lr=1e-3,
                          lr=2e-4),
        cadence=CadenceConfig(log_every=1, sample_every=2, checkpoint_every=2),
        parser=ParserConfig(steps=4, batch_size=4, lr=2e-3, base=4, depth=2),
        eval=EvalConfig(faces=4, edits=2),
    )


#: Preset name -> function building a fresh :class:`Config`.
PRESETS: dict[str, typing.Callable[[], Config]] = {"paper": _paper, "cpu": _cpu, "smoke": _smoke}


def make_config(preset: str, *, data: str | None = None, data_root: str | None = None, device: str | None = None,
                seed: int | None = None, overrides: dict | None = None) -> Config:
    """The config a notebook or a command asks for: a preset, then the run's choices on top.

    Empty / ``None`` arguments keep the preset's value (so ``paper`` keeps CelebAMask-HQ unless
    ``data`` says otherwise); ``overrides`` are dotted keys (see :meth:`Config.with_overrides`).
    """
    chosen: dict[str, object] = {}
    if data:
        chosen["data.dataset"] = data
    if data_root:
        chosen["data.data_root"] = str(data_root)
    if device:
        chosen["device"] = device
    if seed is not None:
        chosen["seed"] = int(seed)
    chosen.update(overrides or {})
    return Config.preset(preset).with_overrides(chosen)


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"model": {"dmn": {"ngf": 8}}}`` -> ``{"model.dmn.ngf": 8}`` (nested dicts joined with dots)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out

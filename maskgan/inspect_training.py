"""One training step, opened up: a MaskVAE step (Eq. 3-5), a stage-I step (Eq. 6-9) and one EBST
iteration (Algorithm 1), with every intermediate tensor and loss term by name.

The notebooks show these *before* they call ``train``, so a student sees the mechanics the loop
repeats thousands of times. Nothing here re-implements a step: each function builds the stage's real
trainer (:func:`maskgan.train.prepared_trainer`, the networks it would train, one training batch),
runs the trainer's own step methods once, and *listens*: forward hooks on the networks record what
the step computed (``z^t`` is what ``MaskVAE.fc_mu`` returned inside ``simulated_edits``,
``I^blend`` what the blender returned inside ``stage_two``, ...). Parameters are compared before
and after each step to show which networks each optimizer really moved. No checkpoint, log or
sample is written: the run directory is only read (the MaskVAE, the stage-I DMN).

    rec = ebst_iteration(cfg, run)          # needs the run's MaskVAE (notebook 01)
    print(rec.latent_table()); print(rec.loss_table()); print(rec.update_table())
    rec.figure()                            # M^t, M^ref, M^inter, M^outer, I^out, I^inter, I^outer, alpha, I^blend
    print(source(EBSTTrainer.stage_two))    # the code that ran, with its file and lines
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from .labels import one_hot
from .losses import kl_divergence
from .text import format_table

__all__ = ["source", "MaskVAEStep", "StageOneStep", "EBSTIteration", "maskvae_step", "stage_one_step",
           "ebst_iteration"]

_ROOT = Path(__file__).resolve().parents[1]


def source(obj) -> str:
    """The source of a function or class with a ``path:first-last`` header (paths relative to the
    repository), for showing in a notebook the code that a step ran."""
    obj = inspect.unwrap(obj)  # a decorated function (torch.no_grad) names its own file, not the decorator's
    lines, first = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj)).resolve()
    try:
        path = path.relative_to(_ROOT)
    except ValueError:
        pass
    header = f"# {path}:{first}-{first + len(lines) - 1}  ({obj.__qualname__})"
    return header + "\n" + "".join(lines).rstrip()


# --- listening to a step ----------------------------------------------------------------------

class _Recorder:
    """Forward hooks that keep (detached, on the CPU) what named modules received and returned."""

    def __init__(self):
        self.calls: dict[str, list[tuple]] = {}
        self._handles = []

    def watch(self, name: str, module: torch.nn.Module) -> None:
        def hook(_module, args, output):
            self.calls.setdefault(name, []).append((_detach(args), _detach(output)))
        self._handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def inputs(self, name: str, call: int = 0):
        return self.calls[name][call][0]

    def output(self, name: str, call: int = 0):
        return self.calls[name][call][1]


def _detach(x):
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu()
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v) for v in x)
    return x


@contextmanager
def _listening(watch: dict[str, torch.nn.Module]):
    rec = _Recorder()
    for name, module in watch.items():
        rec.watch(name, module)
    try:
        yield rec
    finally:
        rec.remove()


def _snapshot(nets: dict[str, torch.nn.Module]) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}


def _moved(before: dict[str, list[torch.Tensor]], nets: dict[str, torch.nn.Module]) -> dict[str, float]:
    """Relative L2 change of each network's parameters since ``before`` (0.0: untouched)."""
    out = {}
    for name, net in nets.items():
        params = list(net.parameters())
        diff = sum(float((p.detach() - q).double().pow(2).sum()) for p, q in zip(params, before[name]))
        norm = sum(float(q.double().pow(2).sum()) for q in before[name])
        out[name] = (diff / norm) ** 0.5 if norm > 0 else 0.0
    return out


def _optimizer_nets(trainer) -> dict[str, list[str]]:
    """Optimizer name -> the networks whose parameters it holds (the trainer's own optimizers)."""
    out = {}
    for opt_name, opt in trainer.optimizers.items():
        held = {id(p) for group in opt.param_groups for p in group["params"]}
        out[opt_name] = [n for n, net in trainer.nets.items() if any(id(p) in held for p in net.parameters())]
    return out


def _floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items()}


def _prepare(stage: str, cfg, run, device):
    from .train import prepared_trainer
    torch.manual_seed(cfg.seed)  # the same networks and batch every time the cell runs
    return prepared_trainer(stage, cfg, getattr(run, "path", run), device=device)


def _update_table(updates: dict[str, dict[str, float]], optimizers: dict[str, str]) -> str:
    """One row per step: the optimizers it stepped and each network's relative parameter change."""
    order = ["maskvae", "dmn", "blender", "disc"]
    present = {n for u in updates.values() for n in u}
    nets = [n for n in order if n in present] + sorted(present - set(order))
    rows = [[step, optimizers.get(step, "")] + [f"{u[n]:.2e}" if u.get(n) else "0 (unchanged)" for n in nets]
            for step, u in updates.items()]
    return format_table(rows, ["step", "optimizers (networks they hold)"] + [f"{n}: relative change" for n in nets])


def _loss_rows(terms: dict[str, float], weights: dict[str, float]) -> list[list]:
    rows = []
    for key, value in terms.items():
        name = key.rsplit("/", 1)[-1]
        w = weights.get(name, "")
        rows.append([key, value, w, (w * value) if isinstance(w, float) else ""])
    return rows


def _generator_weights(cfg) -> dict[str, float]:
    loss = cfg.model.loss
    return {"gan": 1.0, "feat": float(loss.lambda_feat), "percept": float(loss.lambda_percept),
            "l1": float(loss.lambda_l1)}


# --- MaskVAE (Eq. 3-5) --------------------------------------------------------------------------

@dataclass
class MaskVAEStep:
    """One MaskVAE training step (:meth:`maskgan.train.vae.MaskVAETrainer.train_step`)."""
    m_t: torch.Tensor  # (N, H, W) the masks of the batch
    mu: torch.Tensor  # (N, latent) encoder mean
    logvar: torch.Tensor  # (N, latent) encoder log-variance
    z: torch.Tensor  # (N, latent) the sample the decoder got: mu + exp(0.5 logvar) * eps
    logits: torch.Tensor  # (N, 19, H, W) decoder output
    m_decoded: torch.Tensor  # (N, H, W) argmax of the logits
    losses: dict[str, float]  # ce, kl, total, pixel_acc as the trainer computed them
    kl_by_hand: float  # -1/2 sum(1 + logvar - mu^2 - exp(logvar)), summed over z, averaged over the batch
    lambda_kl: float
    class_weights: torch.Tensor | None  # per-class CE weights (cpu preset) or None (plain CE, Eq. 3)
    updates: dict[str, dict[str, float]]
    optimizers: dict[str, str]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"M^t": self.m_t, "mu": self.mu, "logvar": self.logvar, "z": self.z, "logits": self.logits,
                "M^decoded": self.m_decoded}

    def shapes(self) -> dict[str, tuple]:
        return {k: tuple(v.shape) for k, v in self.tensors().items()}

    def table(self) -> str:
        std = torch.exp(0.5 * self.logvar)
        rows = [[k, "x".join(map(str, v.shape)), f"{float(v.float().mean()):.3g}", f"{float(v.float().std()):.3g}"]
                for k, v in (("mu", self.mu), ("logvar", self.logvar), ("std = exp(logvar / 2)", std), ("z", self.z))]
        lines = [format_table(rows, ["tensor", "shape", "mean", "std"]), ""]
        w = self.lambda_kl
        lines.append(format_table([
            ["ce (Eq. 3, per pixel" + (", class-weighted)" if self.class_weights is not None else ")"),
             self.losses["ce"], 1.0, self.losses["ce"]],
            ["kl (Eq. 4-5)", self.losses["kl"], w, w * self.losses["kl"]],
            ["total = ce + lambda_KL kl", self.losses["total"], "", ""]], ["term", "value", "weight", "weighted"]))
        lines += ["", f"KL recomputed from mu and logvar with the formula above: {self.kl_by_hand:.6g} "
                      f"(the loss function: {self.losses['kl']:.6g}); pixel accuracy of the batch "
                      f"{self.losses['pixel_acc']:.3f}", "", _update_table(self.updates, self.optimizers)]
        return "\n".join(lines)

    def figure(self, n: int = 4):
        from .viz import image_grid
        n = min(n, len(self.m_t))
        return image_grid([[self.m_t[i], self.m_decoded[i]] for i in range(n)], col_titles=["mask M", "decoded argmax"],
                          title="one MaskVAE step", cell=1.5)


def maskvae_step(cfg, run, *, device: str | None = None) -> MaskVAEStep:
    """One MaskVAE step on the first training batch, from the networks' initialisation."""
    trainer, batch = _prepare("vae", cfg, run, device)
    vae = trainer.raw("maskvae")
    before = _snapshot(trainer.nets)
    with _listening({"maskvae": vae, "fc_dec": vae.fc_dec}) as rec:
        terms = _floats(trainer.train_step(batch))
    logits, mu, logvar = rec.output("maskvae")
    updates = {"MaskVAE step": _moved(before, trainer.nets)}
    opts = _optimizer_nets(trainer)
    return MaskVAEStep(
        m_t=batch["label"].cpu(), mu=mu, logvar=logvar, z=rec.inputs("fc_dec")[0], logits=logits,
        m_decoded=logits.argmax(1), losses=terms, kl_by_hand=float(kl_divergence(mu, logvar)),
        lambda_kl=float(cfg.model.loss.lambda_kl),
        class_weights=None if trainer.weights is None else trainer.weights.cpu(), updates=updates,
        optimizers={"MaskVAE step": ", ".join(f"{k} ({', '.join(v)})" for k, v in opts.items())})


# --- stage I (Eq. 6-9) ----------------------------------------------------------------------------

@dataclass
class StageOneStep:
    """One stage-I step (:meth:`maskgan.train.gan.DMNTrainer.stage_one` and ``gan_update``)."""
    m_t: torch.Tensor  # (N, H, W)
    i_t: torch.Tensor  # (N, 3, H, W)
    style: torch.Tensor  # (N, P) the AdaIN vector Enc_style(I^t, M^t)
    i_out: torch.Tensor  # (N, 3, H, W) DMN(M^t; style of (I^t, M^t))
    losses: dict[str, float]  # g/gan, g/feat, g/percept, g/l1, g/total, d/real, d/fake, d/total
    weights: dict[str, float]  # lambda of each generator term (Eq. 6)
    updates: dict[str, dict[str, float]]
    optimizers: dict[str, str]
    start: str  # where the DMN's weights came from

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"M^t": self.m_t, "I^t": self.i_t, "style": self.style, "I^out": self.i_out}

    def shapes(self) -> dict[str, tuple]:
        return {k: tuple(v.shape) for k, v in self.tensors().items()}

    def loss_table(self) -> str:
        return format_table(_loss_rows(self.losses, self.weights), ["term", "value", "weight (Eq. 6)", "weighted"])

    def update_table(self) -> str:
        return _update_table(self.updates, self.optimizers)

    def figure(self, n: int = 4):
        from .viz import image_grid
        n = min(n, len(self.m_t))
        return image_grid([[self.m_t[i], self.i_t[i], self.i_out[i]] for i in range(n)],
                          col_titles=["M^t", "I^t", "I^out"], title=f"one stage-I step ({self.start})", cell=1.5)


def _gan_optimizers(trainer, *steps: tuple[str, str]) -> dict[str, str]:
    opts = _optimizer_nets(trainer)
    return {step: f"{g} ({', '.join(opts[g])}), then D ({', '.join(opts['D'])})" for step, g in steps}


def stage_one_step(cfg, run, *, device: str | None = None) -> StageOneStep:
    """One stage-I step on the first training batch, from the DMN's initialisation (what the first
    step of notebook 03's training does)."""
    trainer, batch = _prepare("dmn", cfg, run, device)
    mask, image = one_hot(batch["label"]), batch["image"]
    dmn = trainer.raw("dmn")
    before = _snapshot(trainer.nets)
    with _listening({"dmn": dmn, "style_encoder": dmn.style_encoder}) as rec:
        terms = _floats(trainer.stage_one(mask, image))
    return StageOneStep(
        m_t=batch["label"].cpu(), i_t=image.detach().cpu(), style=rec.output("style_encoder"), i_out=rec.output("dmn"),
        losses=terms, weights=_generator_weights(cfg), updates={"stage I": _moved(before, trainer.nets)},
        optimizers=_gan_optimizers(trainer, ("stage I", "G")), start="initialisation")


# --- EBST (Algorithm 1) ---------------------------------------------------------------------------

@dataclass
class EBSTIteration:
    """One EBST iteration (:meth:`maskgan.train.gan.EBSTTrainer.train_step`): stage I, then stage II."""
    lambda_inter: float
    m_t: torch.Tensor  # (N, H, W) target masks
    m_ref: torch.Tensor  # (N, H, W) reference masks (other training faces)
    i_t: torch.Tensor  # (N, 3, H, W) target images
    z_t: torch.Tensor  # (N, latent) Enc_VAE(M^t) (the mean: the frozen MaskVAE is in eval mode)
    z_ref: torch.Tensor  # (N, latent) Enc_VAE(M^ref)
    z_inter: torch.Tensor  # (N, latent) z^t + (z^ref - z^t) / lambda_inter
    z_outer: torch.Tensor  # (N, latent) z^t - (z^ref - z^t) / lambda_inter
    m_inter: torch.Tensor  # (N, H, W) Dec_VAE(z^inter), argmax
    m_outer: torch.Tensor  # (N, H, W)
    i_out: torch.Tensor  # (N, 3, H, W) stage I: DMN(M^t; style of (I^t, M^t))
    i_inter: torch.Tensor  # (N, 3, H, W) stage II: DMN(M^inter; style of (I^t, M^t))
    i_outer: torch.Tensor  # (N, 3, H, W)
    alpha: torch.Tensor  # (N, 3, H, W) the blender's per-pixel, per-channel weight in (0, 1)
    i_blend: torch.Tensor  # (N, 3, H, W) alpha I^inter + (1 - alpha) I^outer
    stage_one: dict[str, float]  # s1/g/*, s1/d/*
    stage_two: dict[str, float]  # s2/g/*, s2/d/*
    weights: dict[str, float]
    updates: dict[str, dict[str, float]]  # "stage I" / "stage II" -> network -> relative change
    optimizers: dict[str, str]
    start: str  # where the DMN's weights came from

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"M^t": self.m_t, "M^ref": self.m_ref, "I^t": self.i_t, "z^t": self.z_t, "z^ref": self.z_ref,
                "z^inter": self.z_inter, "z^outer": self.z_outer, "M^inter": self.m_inter, "M^outer": self.m_outer,
                "I^out": self.i_out, "I^inter": self.i_inter, "I^outer": self.i_outer, "alpha": self.alpha,
                "I^blend": self.i_blend}

    def shapes(self) -> dict[str, tuple]:
        return {k: tuple(v.shape) for k, v in self.tensors().items()}

    def latent_table(self) -> str:
        """Norms of the four codes, their distances, and how much of each decoded mask differs from M^t
        (batch means)."""
        def norm(z):
            return float(z.norm(dim=1).mean())

        def dist(a, b):
            return float((a - b).norm(dim=1).mean())

        def changed(m):
            return float((m != self.m_t).float().mean())
        rows = [["z^t", norm(self.z_t), 0.0, "", ""],
                ["z^ref", norm(self.z_ref), dist(self.z_ref, self.z_t), "", f"M^ref: {changed(self.m_ref):.1%} of pixels"],
                ["z^inter", norm(self.z_inter), dist(self.z_inter, self.z_t), dist(self.z_inter, self.z_ref),
                 f"M^inter: {changed(self.m_inter):.1%}"],
                ["z^outer", norm(self.z_outer), dist(self.z_outer, self.z_t), dist(self.z_outer, self.z_ref),
                 f"M^outer: {changed(self.m_outer):.1%}"]]
        rows = [[r[0], f"{r[1]:.3f}", f"{r[2]:.3f}", f"{r[3]:.3f}" if r[3] != "" else "", r[4]] for r in rows]
        expected = self.z_t + (self.z_ref - self.z_t) / self.lambda_inter
        check = float((self.z_inter - expected).abs().max())
        return "\n".join([
            format_table(rows, ["code", "|z|", "|z - z^t|", "|z - z^ref|", "decoded mask differs from M^t on"]),
            "", f"|z^inter - z^t| = |z^ref - z^t| / lambda_inter = {dist(self.z_ref, self.z_t) / self.lambda_inter:.3f} "
                f"(lambda_inter = {self.lambda_inter:g}); z^t lies half-way between z^inter and z^outer: "
                f"|z^inter + z^outer - 2 z^t| = {float((self.z_inter + self.z_outer - 2 * self.z_t).abs().max()):.1e}; "
                f"max |z^inter - (z^t + (z^ref - z^t) / lambda_inter)| = {check:.1e}"])

    def loss_table(self) -> str:
        rows = _loss_rows(self.stage_one, self.weights) + _loss_rows(self.stage_two, self.weights)
        return format_table(rows, ["term (s1: stage I, s2: stage II; g: generator, d: discriminator)", "value",
                                   "weight (Eq. 6)", "weighted"])

    def update_table(self) -> str:
        differ = float((self.m_inter != self.m_outer).float().mean())
        gap = float((self.i_inter - self.i_outer).abs().mean())
        return "\n".join([_update_table(self.updates, self.optimizers), "",
                          f"M^inter and M^outer differ on {differ:.1%} of pixels; mean |I^inter - I^outer| = {gap:.3f}. "
                          "The blender's gradient is dL/dI^blend * (I^inter - I^outer): where the two renderings "
                          "agree, alpha learns nothing (and the blender does not move at all when they are equal)."])

    def figure(self, n: int = 4, title: str | None = None):
        """One row per face: the masks, the renderings, alpha (grey = 0.5) and the blend."""
        from .viz import image_grid
        n = min(n, len(self.m_t))
        rows = [[self.m_t[i], self.m_ref[i], self.m_inter[i], self.m_outer[i], self.i_t[i], self.i_out[i],
                 self.i_inter[i], self.i_outer[i], self.alpha[i] * 2 - 1, self.i_blend[i]] for i in range(n)]
        titles = ["M^t", "M^ref", "M^inter", "M^outer", "I^t", "I^out (stage I)", "I^inter", "I^outer", "alpha",
                  "I^blend"]
        return image_grid(rows, col_titles=titles, cell=1.3, title=title or (
            f"one EBST iteration (lambda_inter = {self.lambda_inter:g}; DMN from {self.start})"))


def ebst_iteration(cfg, run, *, device: str | None = None, trained: bool = False) -> EBSTIteration:
    """One EBST iteration on the first training batch (its faces and reference masks), with the DMN
    EBST starts from (the run's stage-I checkpoint when there is one), the run's frozen MaskVAE and a
    fresh blender. ``trained``: with the DMN and blender of the run's EBST checkpoint instead (the
    iteration a trained EBST does; its discriminator too when the checkpoint has one, else stage I's).
    Needs the MaskVAE checkpoint (and with ``trained`` the EBST one); writes nothing."""
    trainer, batch = _prepare("ebst", cfg, run, device)
    if trained:
        ckpt = trainer.run.require("ebst")
        for net in ("dmn", "blender", "disc"):
            if ckpt.weights(net).exists():
                ckpt.load(net, trainer.raw(net))
        start = f"EBST, step {ckpt.step}, with its blender"
    else:
        start_ckpt = trainer.run.latest("dmn")
        start = (f"stage I, step {start_ckpt.step}" if start_ckpt is not None
                 else "initialisation (no stage-I checkpoint)")
    mask, image, ref = one_hot(batch["label"]), batch["image"], one_hot(batch["ref_label"])
    nets = {**trainer.nets, "maskvae": trainer.vae}
    dmn, vae = trainer.raw("dmn"), trainer.vae
    before = _snapshot(nets)
    with _listening({"dmn": dmn}) as rec1:
        s1 = _floats(trainer.stage_one(mask, image, "s1/"))
    after_one = _snapshot(nets)
    moved_one = _moved(before, nets)
    watch = {"dmn": dmn, "fc_mu": vae.fc_mu, "fc_dec": vae.fc_dec, "blender": trainer.raw("blender")}
    with _listening(watch) as rec2:
        s2 = _floats(trainer.stage_two(mask, image, ref))
    n = mask.shape[0]
    z_inter, z_outer = rec2.inputs("fc_dec")[0].chunk(2)  # the decoder's input: cat([z^inter, z^outer])
    m_inter, m_outer = rec2.inputs("dmn")[0].argmax(1).chunk(2)  # the DMN's masks: cat([M^inter, M^outer])
    i_inter, i_outer = rec2.inputs("blender")
    i_blend, alpha = rec2.output("blender")
    return EBSTIteration(
        lambda_inter=float(cfg.train.lambda_inter), m_t=batch["label"].cpu(), m_ref=batch["ref_label"].cpu(),
        i_t=image.detach().cpu(), z_t=rec2.output("fc_mu", 0), z_ref=rec2.output("fc_mu", 1), z_inter=z_inter,
        z_outer=z_outer, m_inter=m_inter, m_outer=m_outer, i_out=rec1.output("dmn")[:n], i_inter=i_inter,
        i_outer=i_outer, alpha=alpha, i_blend=i_blend, stage_one=s1, stage_two=s2, weights=_generator_weights(cfg),
        updates={"stage I": moved_one, "stage II": _moved(after_one, nets)},
        optimizers=_gan_optimizers(trainer, ("stage I", "G"), ("stage II", "GB")), start=start)

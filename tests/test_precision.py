"""bfloat16 on the CPU (maskgan.precision): detection, the fp32 fallback in one line, the editor's and the
trainer's bf16 paths on tiny models, and the layers that keep bf16 and channels-last.

Tolerance of bf16 against fp32 (any CPU, with or without AMX): bfloat16 keeps 8 bits of mantissa and
every matrix unit accumulates in float32, so a frame of the tiny random DMN lands at 54-56 dB PSNR
against float32 here (5 seeds, AVX512-BF16); the tests ask for 40 dB and a largest pixel error of
0.1 (the image range is [-1, 1]).
"""
import math

import pytest
import torch
import torch.nn.functional as F

from maskgan import precision
from maskgan.config import Config
from maskgan.editing import Editor
from maskgan.errors import ConfigError
from maskgan.labels import one_hot
from maskgan.nn import build_dmn
from maskgan.nn.layers import InstanceNorm2d, ReflectionPad2d, adain, instance_norm
from maskgan.precision import InferenceNet

MIN_PSNR_DB = 40.0
MAX_ABS_ERROR = 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture
def cfg():
    return Config.preset("smoke")


@pytest.fixture
def dmn(cfg):
    torch.manual_seed(0)
    return build_dmn(cfg).eval()


@pytest.fixture
def bf16_missing(monkeypatch):
    """A CPU without bfloat16 units (what oneDNN's check says there)."""
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)


@pytest.fixture
def bf16_present(monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)


def _inputs(n=2, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 19, (n, size, size), generator=g)
    image = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    return label, image


def _psnr(a, b):
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


# --- detection and the policy ------------------------------------------------------------------

def test_fp32_is_always_fp32(bf16_present):
    assert precision.resolve("fp32", "cpu") == "fp32"


def test_auto_is_bf16_on_a_cpu_with_bf16_units_and_fp32_without(monkeypatch, capsys):
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)
    assert precision.resolve("auto", "cpu") == "bf16"
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    assert precision.resolve("auto", "cpu") == "fp32"
    assert precision.resolve(None, "cpu") == "fp32"
    assert capsys.readouterr().out == ""  # auto asked for no particular precision: nothing to say


def test_bf16_where_it_is_missing_falls_back_to_fp32_with_one_line(bf16_missing, capsys):
    assert precision.resolve("bf16", "cpu") == "fp32"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "bf16" in lines[0] and "using fp32" in lines[0] and "AMX" in lines[0]


def test_an_unknown_precision_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="'fp16' is not one of auto, fp32, bf16"):
        precision.resolve("fp16", "cpu")


def test_the_requested_precision_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(precision.ENV, raising=False)
    assert precision.requested() == "auto"
    monkeypatch.setenv(precision.ENV, "fp32")
    assert precision.requested() == "fp32" and precision.requested("bf16") == "bf16"
    monkeypatch.setenv(precision.ENV, "half")
    with pytest.raises(ConfigError, match=r"\$MASKGAN_PRECISION is 'half'"):
        precision.requested()


def test_the_cpu_report_names_amx_and_avx512_bf16():
    text = precision.matrix_units("cpu")
    assert text.startswith("AMX ") and ", AVX512-BF16 " in text
    features = precision.cpu_features()
    assert set(features) == {"amx_bf16", "avx512_bf16"} and all(isinstance(v, bool) for v in features.values())


def test_bf16_support_is_the_answer_of_onednn(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert precision.bf16_supported("cpu") is False
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert precision.bf16_supported("cpu") is (torch.backends.mkldnn.is_available())


# --- inference ---------------------------------------------------------------------------------

def test_a_bf16_frame_of_a_tiny_dmn_stays_close_to_fp32(dmn):
    label, image = _inputs()
    mask = one_hot(label)
    with torch.no_grad():
        style = dmn.style(image, mask)
        ref = dmn.render(mask, style)
        out = InferenceNet(dmn, "bf16").render(mask, style)
        single = InferenceNet(dmn, "bf16").render(mask[:1], style[:1])  # one sample: the fused AdaIN
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert not torch.equal(out, ref)  # it did compute in bf16
    for got, want in ((out, ref), (single, ref[:1])):
        assert _psnr(got, want) >= MIN_PSNR_DB
        assert float((got - want).abs().max()) <= MAX_ABS_ERROR


def test_the_bf16_copy_is_bf16_channels_last_and_leaves_the_fp32_network_alone(dmn):
    before = {k: v.clone() for k, v in dmn.state_dict().items()}
    net = InferenceNet(dmn, "bf16")
    label, image = _inputs(n=1)
    with torch.no_grad():
        net.render(one_hot(label), dmn.style(image, one_hot(label)))
    low = net._low_net()
    assert all(p.dtype == torch.bfloat16 for p in low.parameters())
    conv = low.backbone.stem[1].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 for p in dmn.parameters())
    assert all(torch.equal(before[k], v) for k, v in dmn.state_dict().items())


def test_the_bf16_copy_follows_new_weights(dmn):
    net = InferenceNet(dmn, "bf16")
    label, image = _inputs(n=1)
    mask = one_hot(label)
    with torch.no_grad():
        style = dmn.style(image, mask)
        first = net.render(mask, style)
        dmn.backbone.head[1].bias.fill_(50.0)  # in place, as load_state_dict writes: tanh saturates at 1
        second = net.render(mask, style)
    assert not torch.equal(first, second)
    assert float(second.min()) > 0.99


def test_the_style_is_float32_whatever_the_precision(dmn):
    label, image = _inputs(n=1)
    mask = one_hot(label)
    with torch.no_grad():
        assert torch.equal(InferenceNet(dmn, "bf16").style(image, mask), dmn.style(image, mask))


def test_an_inference_net_needs_a_resolved_precision(dmn):
    with pytest.raises(ConfigError, match="resolved precision"):
        InferenceNet(dmn, "auto")


def test_the_editor_switches_precision_at_run_time_and_keeps_its_styles(dmn, bf16_present):
    editor = Editor(dmn, precision="fp32")
    label, image = _inputs(n=1)
    style = editor.style(image[0], label[0], key="face")
    fp32 = editor.render(label[0], style)
    with torch.no_grad():
        assert torch.equal(fp32, dmn.render(one_hot(label), style)[0])  # fp32 is the network itself
    editor.precision = "bf16"
    assert editor.precision == "bf16"
    assert editor.style(image[0], label[0], key="face") is style  # the cache survives the switch
    bf16 = editor.render(label[0], style)
    assert not torch.equal(bf16, fp32) and _psnr(bf16, fp32) >= MIN_PSNR_DB
    editor.precision = "fp32"
    assert torch.equal(editor.render(label[0], style), fp32)


def test_an_editor_asked_for_bf16_on_a_cpu_without_it_renders_fp32_and_says_so_once(dmn, bf16_missing, capsys):
    editor = Editor(dmn, precision="bf16")
    label, _ = _inputs(n=1)
    editor.render(label[0], torch.zeros(1, dmn.n_style_params))
    assert editor.precision == "fp32"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "using fp32" in lines[0]


def test_the_editor_renders_in_bf16_by_default_on_a_cpu_with_bf16_units(dmn, bf16_present):
    assert Editor(dmn).precision == "bf16"


def test_the_editor_renders_fp32_by_default_on_a_cpu_without_bf16_units(dmn, bf16_missing):
    assert Editor(dmn).precision == "fp32"


def test_evaluate_renders_in_the_precision_it_is_given(tmp_path, cfg, monkeypatch, bf16_present):
    from maskgan.evaluation import run as evaluation_run
    from maskgan.train import train
    cfg = cfg.with_overrides({"cadence.sample_every": 1000, "model.loss.vgg_weights": "none",
                              "model.loss.lambda_percept": 0.0})
    train("dmn", cfg, tmp_path, steps=1, progress=False)
    train("parser", cfg, tmp_path, progress=False)
    seen = []
    real = evaluation_run.inference_net

    def spy(net, chosen, device=None, say=print):
        seen.append(chosen)
        return real(net, chosen, device, say)

    monkeypatch.setattr(evaluation_run, "inference_net", spy)
    results = {p: evaluation_run.evaluate_run(tmp_path, 4, n_edits=1, train_parser=False, record=False,
                                              precision=p) for p in ("fp32", "bf16")}
    assert seen == ["fp32", "bf16"]
    a, b = results["fp32"].stages["dmn"], results["bf16"].stages["dmn"]
    assert a.recon_psnr != b.recon_psnr and abs(a.recon_psnr - b.recon_psnr) < 0.5


# --- training ----------------------------------------------------------------------------------

def test_amp_bf16_on_a_cpu_with_bf16_units_is_bfloat16_autocast(bf16_present, capsys):
    assert precision.amp_dtype("bf16", "cpu") is torch.bfloat16
    assert precision.amp_dtype("none", "cpu") is None
    assert capsys.readouterr().out == ""


def test_amp_bf16_on_a_cpu_without_it_trains_fp32_and_says_so_once(bf16_missing, capsys):
    assert precision.amp_dtype("bf16", "cpu") is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "bf16 training" in lines[0] and "using fp32" in lines[0]


def test_amp_fp16_on_a_cpu_trains_fp32_and_says_so(capsys):
    assert precision.amp_dtype("fp16", "cpu") is None
    assert "train.amp=fp16 runs on CUDA" in capsys.readouterr().out


def test_a_bf16_training_step_keeps_fp32_weights_losses_and_optimizer(tmp_path, cfg, bf16_present):
    from maskgan.data import build_dataset
    from maskgan.train import prepared_trainer
    cfg = cfg.with_overrides({"train.amp": "bf16", "cadence.sample_every": 1000, "model.loss.vgg_weights": "none",
                              "model.loss.lambda_percept": 0.0})
    trainer, batch = prepared_trainer("dmn", cfg, tmp_path, dataset=build_dataset(cfg.data, "train", train=True))
    assert trainer.amp_dtype is torch.bfloat16 and trainer.channels_last
    before = [p.detach().clone() for p in trainer.nets["dmn"].parameters()]
    terms = trainer.train_step(batch)
    assert all(v.dtype == torch.float32 and math.isfinite(float(v.detach())) for v in terms.values())
    params = list(trainer.nets["dmn"].parameters())
    assert all(p.dtype == torch.float32 for p in params)
    assert any(not torch.equal(a, p) for a, p in zip(before, params))  # the optimizer stepped
    for state in trainer.optimizers["G"].state.values():
        assert state["exp_avg"].dtype == torch.float32
    assert trainer.nets["dmn"].backbone.stem[1].weight.is_contiguous(memory_format=torch.channels_last)


def test_bf16_autocast_does_not_round_trip_the_backbone_through_fp32(dmn):
    """Inside bf16 autocast every activation of the backbone stays bf16: the pads and norms run in the
    dtype they are given (issue 23's profile: 35% of a bf16 frame went to fp32 copies)."""
    dtypes = []
    hooks = [m.register_forward_hook(lambda m, i, o: dtypes.append((type(m).__name__, o.dtype)))
             for m in dmn.backbone.modules() if not list(m.children())]
    label, image = _inputs(n=2)
    mask = one_hot(label)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        dmn.render(mask, dmn.style(image, mask))
    for h in hooks:
        h.remove()
    after_first_conv = dtypes[dtypes.index(("Conv2d", torch.bfloat16)):]
    assert {d for _, d in after_first_conv} == {torch.bfloat16}, after_first_conv


# --- the layers ----------------------------------------------------------------------------------

def test_instance_norm_equals_torchs_instance_norm():
    x = torch.randn(3, 5, 8, 8)
    torch.testing.assert_close(instance_norm(x), F.instance_norm(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(InstanceNorm2d(5)(x), torch.nn.InstanceNorm2d(5)(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n", [1, 3])
def test_adain_is_eq_2_for_one_sample_and_for_a_batch(n):
    x, gamma, beta = torch.randn(n, 4, 6, 6), torch.rand(n, 4) + 0.5, torch.randn(n, 4)
    mu = x.mean(dim=(2, 3), keepdim=True)
    sigma = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    want = gamma[:, :, None, None] * (x - mu) / sigma + beta[:, :, None, None]
    torch.testing.assert_close(adain(x, gamma, beta), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n", [1, 3])
def test_norms_keep_bf16_and_channels_last(n):
    x = torch.randn(n, 8, 6, 6).bfloat16().contiguous(memory_format=torch.channels_last)
    for out in (instance_norm(x), adain(x, torch.rand(n, 8), torch.randn(n, 8))):
        assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)


def test_the_kits_reflection_pad_keeps_bf16_under_autocast_where_torchs_goes_fp32():
    x = torch.randn(1, 4, 6, 6).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.nn.ReflectionPad2d(1)(x).dtype == torch.float32  # why the kit has its own
        assert ReflectionPad2d(1)(x).dtype == torch.bfloat16
    torch.testing.assert_close(ReflectionPad2d(2)(x.float()), torch.nn.ReflectionPad2d(2)(x.float()), atol=0, rtol=0)


def test_the_kits_norm_and_pad_layers_change_no_state_dict_key(dmn):
    assert not list(InstanceNorm2d(4).state_dict()) and not list(ReflectionPad2d(1).state_dict())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in dmn.modules())  # still an nn.InstanceNorm2d


# --- the app, the command line, the benchmarks, the runtimes -----------------------------------

def test_the_app_takes_a_precision_and_shows_it_in_its_status(tmp_path, cfg, monkeypatch, bf16_present):
    from maskgan.checkpoint import save_checkpoint
    from maskgan.widgets import app_page
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "dmn", 1, {"dmn": build_dmn(cfg)}, {}, {"config": cfg.to_dict()})
    monkeypatch.setenv(precision.ENV, "fp32")  # what `make app PRECISION=fp32` sets
    page = app_page(tmp_path, threaded=False)
    assert page.app.editor.precision == "fp32"
    assert "frames render in fp32 (AMX " in page.children[1].value
    page = app_page(tmp_path, threaded=False, precision="bf16")  # the keyword wins over the environment
    assert page.app.editor.precision == "bf16" and "frames render in bf16" in page.children[1].value


def test_the_commands_that_render_take_a_precision():
    from maskgan.__main__ import build_parser
    parser = build_parser()
    assert parser.parse_args(["bench"]).precision == "auto"
    assert parser.parse_args(["bench", "--precision", "fp32"]).precision == "fp32"
    assert parser.parse_args(["evaluate", "--run-dir", "x"]).precision == "fp32"  # recorded metrics are fp32
    assert parser.parse_args(["evaluate", "--run-dir", "x", "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--precision", "fp16"])


def test_benchmarks_measure_bf16_next_to_fp32_only_where_the_cpu_has_it(monkeypatch):
    from maskgan.bench import _precisions
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)
    assert _precisions("cpu", "auto") == ["fp32", "bf16"] and _precisions("cpu", "fp32") == ["fp32"]
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    assert _precisions("cpu", "auto") == ["fp32"]


def test_interleaved_medians_time_the_functions_in_turns():
    from maskgan.bench import interleaved_medians
    calls = []
    medians = interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1,
                                  repeat=3)
    assert calls == ["a", "b"] * 4 and set(medians) == {"a", "b"} and all(v >= 0 for v in medians.values())


def test_a_runtime_that_is_not_installed_is_a_config_error_saying_how_to_install_it(tmp_path, monkeypatch):
    from maskgan import runtime
    monkeypatch.setattr(runtime, "available_runtimes", lambda: {"onnxruntime": None, "openvino": None})
    with pytest.raises(ConfigError, match=r"pip install -e \"\.\[runtimes\]\""):
        runtime.runtime_renderer("onnxruntime", tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match="unknown runtime"):
        runtime.runtime_renderer("tensorrt", tmp_path / "x.onnx")


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_the_exported_backbone_renders_the_same_frame_in_a_runtime(tmp_path, dmn, name):
    pytest.importorskip("onnxscript")  # torch's ONNX exporter
    pytest.importorskip(name)
    from maskgan.runtime import export_render, runtime_renderer
    path = export_render(dmn, 32, tmp_path / "backbone.onnx")
    assert path.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    label, image = _inputs(n=1)
    mask = one_hot(label)
    with torch.no_grad():
        style = dmn.style(image, mask)
        ref = dmn.render(mask, style)
    out = runtime_renderer(name, path, threads=1).render(mask, style)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_every_benchmark_takes_the_device_and_the_precision():
    """`bench` calls every benchmark as fn(device, precision): one that takes only the device breaks the
    command for everyone who runs it without --only."""
    import inspect

    from maskgan.bench import BENCHMARKS
    for name, fn in BENCHMARKS.items():
        params = list(inspect.signature(fn).parameters)
        assert params[:2] == ["device", "precision"], f"benchmark {name!r} takes {params}"

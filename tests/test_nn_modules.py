"""Behaviour of the networks: shapes, gradients, the paper's layer formulas, style caching, MaskVAE
latent arithmetic, VGG-19 weight loading, and the errors bad inputs get. Smoke sizes throughout."""
import warnings

import pytest
import torch
from torch import nn

import maskgan.nn.vgg as vgg_mod
from maskgan.config import Config
from maskgan.labels import NUM_CLASSES, one_hot
from maskgan.nn import (SFT, AlphaBlender, DenseMappingNetwork, MaskVAE, MultiScaleDiscriminator, VGG19Features,
                        adain, build_blender, build_discriminator, build_dmn, build_maskvae, build_vgg, interpolate,
                        load_vgg19, logits_to_onehot)

SMOKE_DMN = dict(ngf=4, n_down=3, n_blocks=2, enc_ch=2, enc_n_down=3)


def _mask(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return one_hot(torch.randint(0, NUM_CLASSES, (n, size, size), generator=g))


def _image(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def smoke():
    torch.manual_seed(0)
    return Config.preset("smoke")


# --- layer formulas ----------------------------------------------------------------------------

def test_adain_equals_eq2_formula():
    x = torch.randn(2, 3, 5, 4) * 3 + 1
    gamma, beta = torch.randn(2, 3), torch.randn(2, 3)
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    expected = gamma[:, :, None, None] * (x - mu) / torch.sqrt(var + 1e-5) + beta[:, :, None, None]
    torch.testing.assert_close(adain(x, gamma, beta), expected)


def test_adain_rejects_parameters_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"gamma must have shape \(N, C\) = \(2, 3\)"):
        adain(torch.randn(2, 3, 4, 4), torch.randn(2, 4), torch.randn(2, 3))


def test_sft_equals_gamma_times_features_plus_beta():
    torch.manual_seed(0)
    sft = SFT(8)
    feats, cond = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    gamma = sft.gamma[2](nn.functional.leaky_relu(sft.gamma[0](cond), 0.1))
    beta = sft.beta[2](nn.functional.leaky_relu(sft.beta[0](cond), 0.1))
    torch.testing.assert_close(sft(feats, cond), gamma * feats + beta)


# --- output shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
def test_dmn_renders_an_rgb_image_of_the_mask_size(size):
    net = DenseMappingNetwork(**SMOKE_DMN)
    with torch.no_grad():
        out = net(_mask(1, size), _image(1, size))
    assert out.shape == (1, 3, size, size)
    assert out.abs().max() <= 1.0  # tanh


@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
def test_maskvae_decodes_logits_of_the_mask_size(size):
    vae = MaskVAE(size=size, base_ch=2, latent_dim=8).eval()
    with torch.no_grad():
        logits, mu, logvar = vae(_mask(1, size))
    assert logits.shape == (1, NUM_CLASSES, size, size)
    assert mu.shape == logvar.shape == (1, 8)


@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
def test_blender_returns_blend_and_per_channel_alpha(size):
    blender = AlphaBlender(ngf=2, n_down=2, n_blocks=1)
    a, b = _image(1, size, 1), _image(1, size, 2)
    with torch.no_grad():
        blend, alpha = blender(a, b)
    assert blend.shape == alpha.shape == (1, 3, size, size)
    assert float(alpha.min()) > 0 and float(alpha.max()) < 1
    torch.testing.assert_close(blend, alpha * a + (1 - alpha) * b)


@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
def test_discriminator_returns_every_layer_of_every_scale(size):
    d = MultiScaleDiscriminator(NUM_CLASSES + 3, ndf=4, n_layers=3, num_D=2)
    with torch.no_grad():
        out = d(_mask(1, size), _image(1, size))
    assert len(out) == 2 and all(len(scale) == 3 + 2 for scale in out)
    assert [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]  # last item = the 1-channel prediction
    assert out[1][-1].shape[-1] < out[0][-1].shape[-1]  # second scale sees a downsampled input


# --- gradients -----------------------------------------------------------------------------------

def _assert_all_params_get_gradients(module):
    missing = [n for n, p in module.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reached: {missing}"


def test_gradients_reach_every_dmn_parameter(smoke):
    net = build_dmn(smoke)
    net(_mask(2, 32), _image(2, 32)).square().mean().backward()
    _assert_all_params_get_gradients(net)


def test_gradients_reach_every_blender_parameter(smoke):
    net = build_blender(smoke)
    blend, _ = net(_image(2, 32, 1), _image(2, 32, 2))
    blend.square().mean().backward()
    _assert_all_params_get_gradients(net)


def test_gradients_reach_every_discriminator_parameter(smoke):
    net = build_discriminator(smoke)
    sum(scale[-1].square().mean() for scale in net(_mask(2, 32), _image(2, 32))).backward()
    _assert_all_params_get_gradients(net)


def test_gradients_reach_every_maskvae_parameter(smoke):
    net = build_maskvae(smoke).train()
    logits, mu, logvar = net(_mask(2, 32))
    (logits.square().mean() + mu.square().mean() + logvar.square().mean()).backward()
    _assert_all_params_get_gradients(net)


# --- DMN style / render ----------------------------------------------------------------------

def test_cached_style_renders_the_same_image_as_the_full_forward():
    torch.manual_seed(0)
    net = DenseMappingNetwork(**SMOKE_DMN)
    ref_img, ref_mask, edited = _image(1, 32), _mask(1, 32, 1), _mask(1, 32, 2)
    with torch.no_grad():
        style = net.style(ref_img, ref_mask)
        torch.testing.assert_close(net.render(edited, style), net(edited, ref_img, ref_mask))


def test_one_cached_style_is_shared_by_a_batch_of_masks():
    torch.manual_seed(0)
    net = DenseMappingNetwork(**SMOKE_DMN)
    masks = _mask(3, 32, 5)
    with torch.no_grad():
        style = net.style(_image(1, 32), _mask(1, 32))
        batch = net.render(masks, style)
        single = net.render(masks[1:2], style)
    # A batch of 3 and a batch of 1 go through other convolution blockings (oneDNN splits the work by
    # batch and by thread), so the float32 sums round differently: the smoke DMN's outputs (tanh, in
    # [-1, 1]) then differ by its float32 rounding, below 1e-6 on AVX2 and AVX-512 kernels alike. The
    # float32 defaults (atol 1e-5, rtol 1.3e-6) leave ten times that; a style not shared would be off by 0.1.
    torch.testing.assert_close(batch[1:2], single)


def test_dmn_forward_without_image_mask_takes_the_style_from_the_rendered_mask():
    torch.manual_seed(0)
    net = DenseMappingNetwork(**SMOKE_DMN)
    mask, img = _mask(1, 32), _image(1, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(mask, img), net.render(mask, net.style(img, mask)))


def test_adain_parameters_are_never_stored_in_the_network():
    torch.manual_seed(0)
    net = DenseMappingNetwork(**SMOKE_DMN)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    attrs_before = {n: set(vars(m)) for n, m in net.named_modules()}
    with torch.no_grad():
        net(_mask(1, 32), _image(1, 32))
    assert {n: set(vars(m)) for n, m in net.named_modules()} == attrs_before
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_dmn_rejects_a_mask_with_the_wrong_number_of_channels():
    net = DenseMappingNetwork(**SMOKE_DMN)
    with pytest.raises(ValueError, match="DMN expects a 19-channel one-hot mask, got 3 channels"):
        net(torch.zeros(1, 3, 32, 32), _image(1, 32))


def test_dmn_rejects_an_image_of_another_size_than_its_mask():
    net = DenseMappingNetwork(**SMOKE_DMN)
    with pytest.raises(ValueError, match="image is 64x64 but its mask is 32x32"):
        net(_mask(1, 32), _image(1, 64))


def test_dmn_rejects_a_size_not_divisible_by_its_downsampling():
    net = DenseMappingNetwork(**SMOKE_DMN)
    with pytest.raises(ValueError, match="multiples of 8 and at least 16; got 36x36"):
        net(_mask(1, 36), _image(1, 36))


def test_dmn_rejects_a_style_vector_of_the_wrong_length():
    net = DenseMappingNetwork(**SMOKE_DMN)
    with pytest.raises(ValueError, match=r"style parameters must have shape \(N, 256\)"):
        net.render(_mask(1, 32), torch.zeros(1, 100))


def test_build_dmn_rejects_a_config_size_the_network_cannot_take(smoke):
    with pytest.raises(ValueError, match="got 36x36"):
        build_dmn(smoke.with_overrides({"data.size": 36}))


# --- MaskVAE -------------------------------------------------------------------------------------

def _vae():
    torch.manual_seed(0)
    return MaskVAE(size=32, base_ch=4, latent_dim=8).eval()


def test_maskvae_interpolation_at_0_and_1_decodes_the_endpoints():
    vae = _vae()
    with torch.no_grad():
        z_a, _ = vae.encode(_mask(1, 32, 1))
        z_b, _ = vae.encode(_mask(1, 32, 2))
        torch.testing.assert_close(vae.decode(interpolate(z_a, z_b, 0.0)), vae.decode(z_a))
        torch.testing.assert_close(vae.decode(interpolate(z_a, z_b, 1.0)), vae.decode(z_b))


def test_maskvae_interpolation_extrapolates_like_ebst_inter_and_outer():
    z_t, z_ref = torch.randn(2, 8), torch.randn(2, 8)
    torch.testing.assert_close(interpolate(z_t, z_ref, 0.4), z_t + (z_ref - z_t) / 2.5)
    torch.testing.assert_close(interpolate(z_t, z_ref, -0.4), z_t - (z_ref - z_t) / 2.5)


def test_maskvae_interpolation_takes_one_t_per_sample():
    z_a, z_b = torch.zeros(2, 3), torch.ones(2, 3)
    out = interpolate(z_a, z_b, torch.tensor([0.25, -0.5]))
    torch.testing.assert_close(out, torch.tensor([[0.25] * 3, [-0.5] * 3]))


def test_decoded_logits_become_a_one_hot_of_their_argmax():
    logits = torch.randn(2, NUM_CLASSES, 8, 8)
    onehot = logits_to_onehot(logits)
    assert torch.equal(onehot.sum(1), torch.ones(2, 8, 8))
    assert torch.equal(onehot.argmax(1), logits.argmax(1))


def test_maskvae_reconstructs_from_mu_in_eval_mode_and_samples_in_training_mode():
    vae, mask = _vae(), _mask(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(vae(mask)[0], vae(mask)[0])
        vae.train()
        assert not torch.equal(vae(mask)[0], vae(mask)[0])


def test_maskvae_rejects_a_mask_of_another_size():
    with pytest.raises(ValueError, match="MaskVAE was built for 32x32 masks, got 64x64"):
        _vae().encode(_mask(1, 64))


def test_maskvae_rejects_a_size_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="power-of-two mask size >= 8.*got 48"):
        MaskVAE(size=48)


# --- blender / discriminator errors --------------------------------------------------------------

def test_blender_rejects_images_of_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        AlphaBlender(ngf=2, n_down=2, n_blocks=1)(_image(1, 32), _image(1, 64))


def test_discriminator_rejects_a_mask_image_pair_with_the_wrong_channel_count():
    d = MultiScaleDiscriminator(NUM_CLASSES + 3, ndf=4, n_layers=2, num_D=1)
    with pytest.raises(ValueError, match=r"mask \+ image = 22 channels, got 3 \+ 3 = 6"):
        d(torch.zeros(1, 3, 32, 32), _image(1, 32))


# --- VGG-19 --------------------------------------------------------------------------------------

def _torchvision_vgg19_features_layout():
    """Keys and shapes of torchvision's ``vgg19().features`` state dict, written from the VGG-19
    configuration "E" (conv widths, M = max-pool): a conv at index i owns ``features.i.*``."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    layout, idx, c_in = {}, 0, 3
    for v in cfg:
        if v == "M":
            idx += 1
            continue
        layout[f"features.{idx}.weight"] = (v, c_in, 3, 3)
        layout[f"features.{idx}.bias"] = (v,)
        idx, c_in = idx + 2, v  # conv, then ReLU
    return layout


def test_vgg_state_dict_has_torchvision_vgg19_features_keys_and_shapes():
    with torch.device("meta"):
        model = VGG19Features()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = _torchvision_vgg19_features_layout()
    assert list(got) == list(expected)
    assert got == expected
    assert "features.34.weight" in got and len(got) == 32


@pytest.fixture(scope="module")
def vgg_random():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_vgg19("random", seed=3)


def test_torchvision_shaped_checkpoint_with_classifier_keys_loads(tmp_path, vgg_random):
    state = {k: v.clone() for k, v in vgg_random.state_dict().items()}
    # classifier.* as in torchvision's whole-network file (shrunk: they are ignored on load)
    state.update({"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4),
                  "classifier.6.weight": torch.zeros(2, 4), "classifier.6.bias": torch.zeros(2)})
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    loaded = load_vgg19(path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in vgg_random.state_dict().items())


def test_features_only_checkpoint_loads(tmp_path, vgg_random):
    path = tmp_path / "features.pth"
    torch.save(vgg_random.features.state_dict(), path)  # keys "0.weight", ...
    loaded = load_vgg19(path)
    assert torch.equal(loaded.features[34].weight, vgg_random.features[34].weight)


def test_imagenet_weights_come_from_the_torch_hub_cache(tmp_path, monkeypatch, vgg_random):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(vgg_random.state_dict(), tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth")
    loaded = load_vgg19("imagenet")
    assert torch.equal(loaded.features[0].weight, vgg_random.features[0].weight)


def test_imagenet_weights_without_internet_raise_an_error_saying_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="copy torchvision's vgg19-dcbb9e9d.pth to .*checkpoints"):
        load_vgg19("imagenet")


def test_missing_vgg_weights_file_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_vgg19(tmp_path / "nope.pth")


def test_random_vgg_chosen_on_purpose_is_seeded_and_silent(monkeypatch):
    """The smoke preset chooses random weights; a red warning in every smoke notebook taught nothing."""
    monkeypatch.setattr(vgg_mod, "_warned_random", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails here
        a = load_vgg19("random", seed=1)
        b = load_vgg19("random", seed=1)
    assert torch.equal(a.features[0].weight, b.features[0].weight)


def test_auto_vgg_without_the_imagenet_file_falls_back_to_random_and_warns_once(monkeypatch, tmp_path):
    monkeypatch.setattr(vgg_mod, "_warned_random", False)
    monkeypatch.setattr(vgg_mod, "hub_checkpoint_path", lambda: tmp_path / "vgg19-dcbb9e9d.pth")
    with pytest.warns(UserWarning, match="RANDOM weights.*auto.*found no ImageNet file"):
        a = load_vgg19("auto", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        b = load_vgg19("auto", seed=1)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert torch.equal(a.features[0].weight, load_vgg19("random", seed=1).features[0].weight)


def test_vgg_weights_none_disables_the_network(smoke):
    assert build_vgg(smoke.with_overrides({"model.loss.vgg_weights": "none"})) is None


def test_vgg_is_frozen_but_passes_gradients_to_its_input(vgg_random):
    vgg_random.train()
    assert not vgg_random.training
    assert not any(p.requires_grad for p in vgg_random.parameters())
    x = _image(1, 32).requires_grad_()
    feats = vgg_random(x)
    assert [f.shape[1:] for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    sum(f.mean() for f in feats).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_kaiming_encoder_init_lets_the_style_depend_on_the_image():
    """With the demo's N(0, 0.02) init the style vector is nearly the same for every image (the
    signal fades through the unnormalised encoders); the kit's default He init keeps it apart."""
    torch.manual_seed(0)
    images, masks = torch.rand(8, 3, 64, 64) * 2 - 1, one_hot(torch.randint(0, NUM_CLASSES, (8, 64, 64)))
    spread = {}
    for scheme in ("demo", "kaiming"):
        torch.manual_seed(1)
        net = DenseMappingNetwork(ngf=8, n_down=3, n_blocks=2, enc_ch=8, enc_n_down=4, encoder_init=scheme)
        with torch.no_grad():
            style = net.style(images, masks)
        spread[scheme] = float(style.std(0).mean() / style.std())  # across-image spread, relative
    assert spread["kaiming"] > 20 * spread["demo"], spread


def test_encoder_init_is_checked_by_the_config():
    from maskgan.config import ConfigError
    with pytest.raises(ConfigError, match="encoder_init 'xavier' is not one of kaiming, demo"):
        Config.preset("smoke").with_overrides({"model.dmn.encoder_init": "xavier"})

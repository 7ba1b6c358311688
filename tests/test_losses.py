"""Losses on inputs whose value is known by hand (Eq. 3-9)."""
import math

import pytest
import torch

from maskgan.config import LossConfig
from maskgan.losses import (discriminator_loss, feature_matching_loss, gan_discriminator_loss, gan_generator_loss,
                            generator_loss, kl_divergence, maskvae_loss, perceptual_loss)


def _d_outputs(pred_value, n_scales=2, n_layers=3, feat_value=0.0):
    """Discriminator-shaped outputs: per scale, n_layers + 1 feature maps then the prediction."""
    return [[torch.full((1, 4, 3, 3), feat_value) for _ in range(n_layers + 1)] + [torch.full((1, 1, 3, 3), pred_value)]
            for _ in range(n_scales)]


# --- adversarial (Eq. 7) -------------------------------------------------------------------------

def test_lsgan_of_perfect_predictions_is_zero():
    d = gan_discriminator_loss(_d_outputs(1.0), _d_outputs(0.0), "lsgan")
    assert float(d["real"]) == 0 and float(d["fake"]) == 0
    assert float(gan_generator_loss(_d_outputs(1.0), "lsgan")) == 0


def test_lsgan_sums_the_mean_squared_error_over_scales():
    # every prediction 0 where 1 is wanted: MSE 1 per scale, 2 scales
    assert float(gan_generator_loss(_d_outputs(0.0), "lsgan")) == pytest.approx(2.0)
    assert float(gan_discriminator_loss(_d_outputs(0.5), _d_outputs(0.5))["fake"]) == pytest.approx(2 * 0.25)


def test_hinge_is_zero_beyond_the_margin_and_the_generator_side_is_minus_the_mean():
    d = gan_discriminator_loss(_d_outputs(2.0), _d_outputs(-2.0), "hinge")
    assert float(d["real"]) == 0 and float(d["fake"]) == 0
    d = gan_discriminator_loss(_d_outputs(0.0), _d_outputs(0.0), "hinge")
    assert float(d["real"]) == pytest.approx(2.0) and float(d["fake"]) == pytest.approx(2.0)
    assert float(gan_generator_loss(_d_outputs(0.75), "hinge")) == pytest.approx(-1.5)


def test_original_gan_loss_is_the_log_form_on_logits():
    x = 0.3
    d = gan_discriminator_loss(_d_outputs(x, n_scales=1), _d_outputs(x, n_scales=1), "original")
    sigmoid = 1 / (1 + math.exp(-x))
    assert float(d["real"]) == pytest.approx(-math.log(sigmoid), rel=1e-5)
    assert float(d["fake"]) == pytest.approx(-math.log(1 - sigmoid), rel=1e-5)
    assert float(gan_generator_loss(_d_outputs(x, n_scales=1), "original")) == pytest.approx(-math.log(sigmoid), rel=1e-5)


def test_discriminator_total_is_half_the_sum_of_real_and_fake_terms():
    terms = discriminator_loss(_d_outputs(0.0), _d_outputs(1.0), LossConfig())
    assert float(terms["total"]) == pytest.approx(0.5 * (2.0 + 2.0))


def test_unknown_gan_mode_is_rejected_with_the_valid_modes():
    with pytest.raises(ValueError, match="lsgan, hinge, original"):
        gan_generator_loss(_d_outputs(1.0), "wgan")


# --- feature matching (Eq. 8) ---------------------------------------------------------------------

def test_feature_matching_of_identical_features_is_zero():
    assert float(feature_matching_loss(_d_outputs(0.3, feat_value=2.0), _d_outputs(0.7, feat_value=2.0))) == 0


def test_feature_matching_weights_each_layer_4_over_n_layers_plus_1_over_num_d():
    # features differ by 1 everywhere: each of the (n_layers + 1) compared layers of each scale
    # contributes 4 / (n_layers + 1) / num_D, so the total is 4 whatever n_layers and num_D.
    for n_layers, n_scales in [(3, 2), (2, 1), (4, 3)]:
        fake = _d_outputs(0.0, n_scales, n_layers, feat_value=1.0)
        real = _d_outputs(5.0, n_scales, n_layers, feat_value=0.0)  # predictions are not compared
        assert float(feature_matching_loss(fake, real)) == pytest.approx(4.0)


def test_feature_matching_does_not_backpropagate_into_real_features():
    real = _d_outputs(0.0, feat_value=1.0)
    for scale in real:
        for f in scale:
            f.requires_grad_()
    fake = _d_outputs(0.0, feat_value=0.0)
    fake[0][0].requires_grad_()
    feature_matching_loss(fake, real).backward()
    assert fake[0][0].grad is not None
    assert all(f.grad is None for scale in real for f in scale)


# --- perceptual (Eq. 9) ---------------------------------------------------------------------------

class _FiveCopies(torch.nn.Module):
    """A stand-in VGG whose five "layers" are the image itself."""

    def forward(self, x, n_layers=5):
        self.calls = getattr(self, "calls", []) + [n_layers]
        return [x] * n_layers


def test_perceptual_loss_of_identical_images_is_zero():
    x = torch.rand(2, 3, 8, 8)
    assert float(perceptual_loss(_FiveCopies(), x, x.clone())) == 0


def test_perceptual_loss_weights_layers_1_32_to_1():
    fake, real = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    assert float(perceptual_loss(_FiveCopies(), fake, real)) == pytest.approx(1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1)


def test_perceptual_loss_sends_gradients_to_the_fake_only():
    fake, real = torch.rand(1, 3, 4, 4, requires_grad=True), torch.rand(1, 3, 4, 4, requires_grad=True)
    perceptual_loss(_FiveCopies(), fake, real).backward()
    assert fake.grad is not None and real.grad is None


# --- MaskVAE (Eq. 3-5) ----------------------------------------------------------------------------

def test_kl_of_the_standard_normal_is_zero():
    assert float(kl_divergence(torch.zeros(4, 16), torch.zeros(4, 16))) == 0


def test_kl_sums_over_latent_dims_and_averages_over_the_batch():
    mu = torch.ones(1, 10)  # KL per dim = 0.5 * mu^2 = 0.5
    assert float(kl_divergence(mu, torch.zeros(1, 10))) == pytest.approx(5.0)
    assert float(kl_divergence(mu.repeat(3, 1), torch.zeros(3, 10))) == pytest.approx(5.0)


def test_kl_uses_the_log_variance_form():
    logvar = torch.full((1, 1), math.log(4.0))  # variance 4: KL = 0.5 * (4 - 1 - log 4)
    assert float(kl_divergence(torch.zeros(1, 1), logvar)) == pytest.approx(0.5 * (4 - 1 - math.log(4)))


def test_maskvae_loss_is_cross_entropy_plus_lambda_kl_times_kl():
    target = torch.randint(0, 19, (2, 8, 8))
    logits = torch.randn(2, 19, 8, 8)
    mu, logvar = torch.ones(2, 4), torch.zeros(2, 4)
    terms = maskvae_loss(logits, target, mu, logvar, lambda_kl=1e-5)
    expected_ce = torch.nn.functional.cross_entropy(logits, target)
    torch.testing.assert_close(terms["ce"], expected_ce)
    assert float(terms["kl"]) == pytest.approx(2.0)
    torch.testing.assert_close(terms["total"], expected_ce + 1e-5 * 2.0)


def test_maskvae_loss_accepts_a_one_hot_target_and_is_near_zero_for_confident_correct_logits():
    target = torch.randint(0, 19, (1, 8, 8))
    onehot = torch.nn.functional.one_hot(target, 19).permute(0, 3, 1, 2).float()
    terms = maskvae_loss(onehot * 50.0, onehot, torch.zeros(1, 4), torch.zeros(1, 4))
    assert float(terms["ce"]) < 1e-6


def test_maskvae_loss_rejects_a_target_of_another_size():
    with pytest.raises(ValueError, match="do not match"):
        maskvae_loss(torch.zeros(1, 19, 8, 8), torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 2), torch.zeros(1, 2))


# --- generator objective (Eq. 6) -----------------------------------------------------------------

def test_generator_total_is_gan_plus_lambdas_times_feat_and_percept():
    cfg = LossConfig(lambda_feat=10.0, lambda_percept=10.0)
    fake, real = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    terms = generator_loss(_d_outputs(0.0, feat_value=1.0), _d_outputs(1.0, feat_value=0.0), fake, real,
                           _FiveCopies(), cfg)
    assert float(terms["gan"]) == pytest.approx(2.0)
    assert float(terms["feat"]) == pytest.approx(4.0)
    assert float(terms["percept"]) == pytest.approx(1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1)
    assert float(terms["total"]) == pytest.approx(2.0 + 10 * 4.0 + 10 * float(terms["percept"]))


def test_generator_loss_without_vgg_has_a_zero_perceptual_term():
    terms = generator_loss(_d_outputs(1.0), _d_outputs(1.0), torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4),
                           None, LossConfig())
    assert float(terms["percept"]) == 0 and float(terms["total"]) == 0


def test_pixel_l1_term_is_the_mean_absolute_difference_and_off_by_default():
    fake, real = torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, 3, 4, 4)
    real[0, 0, 0, 0] = 8.5  # one pixel 8 away, the other 95 pixels 0.5 away: mean (8 + 95 * 0.5) / 96
    off = generator_loss(_d_outputs(1.0), _d_outputs(1.0), fake, real, None, LossConfig())
    on = generator_loss(_d_outputs(1.0), _d_outputs(1.0), fake, real, None, LossConfig(lambda_l1=4.0))
    assert float(off["l1"]) == 0 and float(off["total"]) == 0  # the paper's Eq. 6 has no pixel term
    assert float(on["l1"]) == pytest.approx((8 + 95 * 0.5) / 96)
    assert float(on["total"]) == pytest.approx(4.0 * (8 + 95 * 0.5) / 96)


def test_perceptual_loss_skips_deep_vgg_layers_whose_weight_is_zero():
    vgg = _FiveCopies()
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    loss = perceptual_loss(vgg, x, y, (1.0, 1.0, 1.0, 0.0, 0.0))
    assert vgg.calls == [3, 3]
    assert torch.allclose(loss, 3 * torch.nn.functional.l1_loss(x, y))


def test_vgg_stops_after_the_requested_layer():
    from maskgan.nn.vgg import VGG19Features
    vgg = VGG19Features()
    feats = vgg(torch.rand(1, 3, 32, 32) * 2 - 1, n_layers=2)
    assert [f.shape[1] for f in feats] == [64, 128]


def test_maskvae_class_weights_make_a_weighted_mean_of_the_pixels_cross_entropy():
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 2, 0, 1] = 2.0
    target = torch.tensor([[[0, 2]]])
    mu = logvar = torch.zeros(1, 4)
    # pixel 1 logits (0, 0, 0): CE = log 3; pixel 2 logits (0, 0, 2), target 2: CE = log(2 + e^2) - 2
    ce_1, ce_2 = math.log(3), math.log(2 + math.e ** 2) - 2
    plain = maskvae_loss(logits, target, mu, logvar)
    weighted = maskvae_loss(logits, target, mu, logvar, class_weights=torch.tensor([1.0, 5.0, 3.0]))
    assert float(plain["ce"]) == pytest.approx((ce_1 + ce_2) / 2)
    assert float(weighted["ce"]) == pytest.approx((1 * ce_1 + 3 * ce_2) / (1 + 3))  # torch's weighted mean

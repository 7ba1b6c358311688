"""Evaluation metrics and the face parser on inputs whose answer is known by hand."""
import math

import pytest
import torch

from maskgan.metrics import (PSNR_CAP_DB, SegmentationMeter, confusion_matrix, edit_region, fid, fid_available,
                             fid_from_features, frechet_distance, inside_outside, label_change_fraction,
                             laplacian_pyramid, load_inception, mean_iou, per_class_iou, pixel_accuracy, psnr,
                             sliced_wasserstein, ssim)
from maskgan.metrics.inception import InceptionV3Features
from maskgan.nn.parser import FaceParser


def _images(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 1.6 - 0.8  # inside [-1, 1] with room for offsets


def _square(size=16, top=4, left=4, side=8, cls=1):
    m = torch.zeros(1, size, size, dtype=torch.int64)
    m[:, top:top + side, left:left + side] = cls
    return m


# --- PSNR ----------------------------------------------------------------------------------------

def test_psnr_of_identical_images_is_the_cap_or_infinite_without_cap():
    x = _images()
    assert psnr(x, x).tolist() == [PSNR_CAP_DB, PSNR_CAP_DB]
    assert torch.isinf(psnr(x, x, cap=None)).all()


def test_psnr_of_a_known_mse_is_ten_log10_of_its_inverse():
    a = torch.zeros(1, 3, 8, 8)
    b = a + 0.2  # 0.1 apart on the [0, 1] scale: MSE 0.01 -> 20 dB
    assert float(psnr(a, b)) == pytest.approx(20.0, abs=1e-4)


def test_psnr_is_one_value_per_image():
    a = torch.zeros(2, 3, 8, 8)
    b = torch.stack([a[0] + 0.2, a[1] + 0.02])  # MSE 1e-2 and 1e-4
    assert psnr(a, b).tolist() == pytest.approx([20.0, 40.0], abs=1e-3)


def test_masked_psnr_ignores_pixels_outside_the_mask():
    a, b = _images(), _images(seed=1)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:20, 8:20] = True
    b2 = b.clone()
    b2[:, :, ~mask] = -a[:, :, ~mask]  # change everything outside
    assert torch.equal(psnr(a, b, mask=mask), psnr(a, b2, mask=mask))
    assert not torch.equal(psnr(a, b), psnr(a, b2))


def test_psnr_of_an_empty_mask_is_nan():
    x = _images(1)
    assert math.isnan(float(psnr(x, x + 0.1, mask=torch.zeros(32, 32, dtype=torch.bool))))


def test_a_mask_of_the_wrong_size_is_rejected_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"N=1, H=8, W=8; got \(4, 4\)"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), mask=torch.ones(4, 4, dtype=torch.bool))


def test_psnr_rejects_images_of_different_shapes_naming_both():
    with pytest.raises(ValueError, match=r"\(1, 3, 8, 8\) and \(1, 3, 8, 9\)"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


# --- SSIM ----------------------------------------------------------------------------------------

def test_ssim_of_identical_images_is_one():
    x = _images()
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_ssim_of_a_constant_offset_is_below_one_and_symmetric():
    a = _images(1)
    b = a + 0.2
    s = float(ssim(a, b))
    assert s < 0.99
    assert float(ssim(b, a)) == s


def test_ssim_of_two_flat_images_is_the_luminance_term_of_wang_et_al():
    # flat images: no variance, so only (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1) remains
    a, b = torch.full((1, 3, 16, 16), -0.4), torch.full((1, 3, 16, 16), 0.0)  # 0.3 and 0.5 on [0, 1]
    c1 = 0.01 ** 2
    assert float(ssim(a, b)) == pytest.approx((2 * 0.3 * 0.5 + c1) / (0.3 ** 2 + 0.5 ** 2 + c1), rel=1e-4)


def test_masked_ssim_ignores_pixels_outside_the_mask_and_its_window():
    a, b = _images(), _images(seed=1)
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, 10:16, 10:16] = True
    b2 = b.clone()
    b2[:, :, 22:, :] = 0.9  # far from the mask: more than 5 px (half the window) below it
    assert torch.allclose(ssim(a, b, mask=mask), ssim(a, b2, mask=mask))
    assert not torch.allclose(ssim(a, b), ssim(a, b2))


def test_ssim_with_an_all_true_mask_equals_plain_ssim():
    a, b = _images(), _images(seed=1)
    assert torch.allclose(ssim(a, b, mask=torch.ones(32, 32, dtype=torch.bool)), ssim(a, b))


def test_ssim_rejects_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_inside_outside_separates_the_edited_region():
    ref = _images(1)
    region = torch.zeros(1, 32, 32, dtype=torch.bool)
    region[:, 12:20, 12:20] = True
    out = torch.where(region[:, None], -ref, ref)
    scores = inside_outside(out, ref, region)
    assert scores["psnr_outside"] == PSNR_CAP_DB
    assert scores["psnr_inside"] < 15
    assert scores["ssim_inside"] < scores["ssim_outside"] < 1


# --- segmentation --------------------------------------------------------------------------------

def test_a_perfect_prediction_scores_one():
    target = torch.randint(0, 19, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    assert pixel_accuracy(target, target) == 1.0
    assert mean_iou(target, target) == 1.0


def test_a_square_shifted_by_two_pixels_has_the_hand_computed_scores():
    # 8x8 square in a 16x16 map, shifted 2 px right: it keeps 8x6 = 48 of its 64 pixels
    target, pred = _square(), _square(left=6)
    iou_square = 48 / (64 + 64 - 48)          # 0.6
    iou_background = 176 / (192 + 192 - 176)  # the 192 background pixels keep 176
    assert pixel_accuracy(pred, target) == pytest.approx((256 - 32) / 256)
    assert per_class_iou(pred, target)[:2].tolist() == pytest.approx([iou_background, iou_square])
    assert mean_iou(pred, target) == pytest.approx((iou_background + iou_square) / 2)


def test_mean_iou_skips_classes_absent_from_both_maps_unless_asked_not_to():
    target, pred = _square(), _square(left=6)
    iou = per_class_iou(pred, target)
    assert torch.isnan(iou[2:]).all()
    with_absent = mean_iou(pred, target, ignore_absent=False)  # 17 absent classes count as 1
    assert with_absent == pytest.approx((float(iou[0]) + float(iou[1]) + 17) / 19)


def test_confusion_matrix_rows_are_targets_and_columns_are_predictions():
    target = torch.tensor([[0, 0, 1, 2]])
    pred = torch.tensor([[0, 1, 1, 1]])
    cm = confusion_matrix(pred, target, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_confusion_matrix_leaves_out_the_ignore_index():
    target = torch.tensor([[0, 255, 1]])
    pred = torch.tensor([[0, 0, 0]])
    assert confusion_matrix(pred, target, num_classes=2, ignore_index=255).sum() == 2


def test_meter_over_two_batches_equals_one_batch_of_both():
    g = torch.Generator().manual_seed(3)
    t1, t2 = torch.randint(0, 5, (2, 8, 8), generator=g), torch.randint(0, 7, (3, 8, 8), generator=g)
    p1, p2 = torch.randint(0, 5, (2, 8, 8), generator=g), torch.randint(0, 7, (3, 8, 8), generator=g)
    two = SegmentationMeter().update(p1, t1).update(p2, t2).compute()
    one = SegmentationMeter().update(torch.cat([p1, p2]), torch.cat([t1, t2])).compute()
    assert two == one
    assert two["mean_iou"] == pytest.approx(mean_iou(torch.cat([p1, p2]), torch.cat([t1, t2])))


def test_meter_names_classes_and_reports_absent_ones_as_none():
    scores = SegmentationMeter().update(_square(left=6), _square()).compute()
    assert scores["per_class_iou"]["skin"] == pytest.approx(0.6)
    assert scores["per_class_iou"]["hair"] is None
    assert scores["num_pixels"] == 256


def test_label_values_outside_the_classes_are_rejected_with_the_value():
    with pytest.raises(ValueError, match=r"\[23\].*0\.\.18"):
        confusion_matrix(torch.full((1, 4, 4), 23), torch.zeros(1, 4, 4, dtype=torch.int64))


# --- sliced Wasserstein distance -----------------------------------------------------------------

@pytest.fixture(scope="module")
def noise_and_flat():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(64, 3, 64, 64, generator=g) * 2 - 1
    flat = (torch.rand(64, 3, 1, 1, generator=g) * 2 - 1).expand(64, 3, 64, 64).contiguous()
    return noise, flat


def test_swd_has_one_value_per_pyramid_level_down_to_16_and_their_mean(noise_and_flat):
    noise, _ = noise_and_flat
    out = sliced_wasserstein(noise[:8], noise[8:16], patches_per_image=16)
    assert list(out) == ["swd_64", "swd_32", "swd_16", "swd_avg"]
    assert out["swd_avg"] == pytest.approx((out["swd_64"] + out["swd_32"] + out["swd_16"]) / 3)


def test_swd_of_a_set_with_itself_is_far_smaller_than_noise_against_flat_images(noise_and_flat):
    noise, flat = noise_and_flat
    same = sliced_wasserstein(noise, noise, seed=1)
    different = sliced_wasserstein(noise, flat, seed=1)
    for key in same:
        assert different[key] > 5 * same[key], key
    assert different["swd_64"] > 100  # x1e3 scale


def test_swd_is_deterministic_given_the_seed(noise_and_flat):
    noise, flat = noise_and_flat
    a = sliced_wasserstein(noise[:8], flat[:8], seed=7, patches_per_image=32)
    assert sliced_wasserstein(noise[:8], flat[:8], seed=7, patches_per_image=32) == a
    assert sliced_wasserstein(noise[:8], flat[:8], seed=8, patches_per_image=32) != a


def test_swd_compares_sets_of_different_sizes(noise_and_flat):
    noise, _ = noise_and_flat
    out = sliced_wasserstein(noise[:10], noise[10:16], patches_per_image=32)
    assert all(math.isfinite(v) for v in out.values())


def test_laplacian_pyramid_levels_add_back_up_to_the_image():
    from maskgan.metrics.swd import _up
    x = _images(2, 32)
    levels = laplacian_pyramid(x, 3)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8]
    rebuilt = levels[-1]
    for lv in reversed(levels[:-1]):
        rebuilt = lv + _up(rebuilt)
    assert torch.allclose(rebuilt, x, atol=1e-5)


# --- Fréchet distance and FID --------------------------------------------------------------------
#
# How close must a computed FID be to the exact one? FID = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2),
# and tr (S1 S2)^(1/2) is the sum of the square roots of the eigenvalues of a symmetric matrix M
# (D x D, or n x n from the features) in float64. LAPACK's symmetric eigensolver is backward stable in
# every code path MKL may take (SSE, AVX2, AVX-512; AMX is not used for float64): each computed eigenvalue
# is within c * D * eps * ||M|| of an exact one, and forming M (Cholesky or eigh of S1, two products) moves
# it by as much again. An eigenvalue that is exactly 0 (every one past the rank, i.e. past the number of
# samples, or of a singular S1) becomes rounding noise, and its square root sqrt(c * D * eps * ||M||):
# 1e-16 turns into 1e-8. Which noise depends on the order of the float sums, so on the instruction set and
# the thread count: a tolerance of rel 1e-8 passed on AVX2 and failed at 1.2e-8 on an AVX-512/AMX CPU
# (issue 24). What the algorithm guarantees, with ||M|| <= ||S1|| ||S2|| and c = 10 for the constants of
# the eigensolver and of forming M, is
#     |FID computed - FID exact| <= 2 * D * sqrt(10 * D * eps * ||S1|| ||S2||) + 10 * D * eps * (tr S1 + tr S2)
# (the last term: the traces and the mean difference, summed in float64). The formulas checked below are
# exact, so a mistake in one would be off by far more (O(1) of the FID).

EPS64 = torch.finfo(torch.float64).eps


def fid_rounding(s1, s2) -> float:
    """The float64 rounding bound above for covariances ``s1``, ``s2`` (D x D)."""
    s1, s2 = torch.as_tensor(s1, dtype=torch.float64), torch.as_tensor(s2, dtype=torch.float64)
    d = s1.shape[-1]
    norms = float(torch.linalg.matrix_norm(s1, ord=2)) * float(torch.linalg.matrix_norm(s2, ord=2))
    return 2 * d * math.sqrt(10 * d * EPS64 * norms) + 10 * d * EPS64 * float(s1.trace() + s2.trace())


def test_frechet_distance_of_identical_gaussians_is_zero():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 8, generator=g, dtype=torch.float64)
    mu, sigma = torch.randn(8, generator=g, dtype=torch.float64), a @ a.T
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=fid_rounding(sigma, sigma))


def test_frechet_distance_of_1d_gaussians_is_the_closed_form():
    mu1, s1, mu2, s2 = 1.5, 2.0, -0.5, 0.5  # means and standard deviations
    expected = (mu1 - mu2) ** 2 + (s1 - s2) ** 2
    assert frechet_distance(torch.tensor([mu1]), torch.tensor([[s1 ** 2]]),
                            torch.tensor([mu2]), torch.tensor([[s2 ** 2]])) == pytest.approx(expected)


def test_frechet_distance_of_diagonal_gaussians_sums_the_1d_distances():
    import numpy as np
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 3 * 1.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # means differ by 1 in each axis
    # diagonal and well apart from 0: every step is exact to a few ulps, so the default rel 1e-6 holds anywhere
    assert frechet_distance(np.zeros(3), np.diag(v1), np.ones(3), np.diag(v2)) == pytest.approx(expected)


def test_fid_from_features_of_shifted_features_is_the_squared_shift():
    from maskgan.metrics import gaussian_stats
    feats = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([3.0, 0, 0, 4.0, 0, 0], dtype=torch.float64)  # same covariance, means 5 apart
    s = gaussian_stats(feats)[1]
    assert fid_from_features(feats, feats + shift) == pytest.approx(25.0, abs=fid_rounding(s, s))


def test_frechet_distance_rejects_a_covariance_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"sigma2 must be a \(2, 2\) covariance"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))


def test_missing_inception_weights_are_explained_by_fid_available_and_fid(tmp_path):
    missing = tmp_path / "pt_inception.pth"
    ok, reason = fid_available(missing)
    assert not ok and str(missing) in reason and "pytorch-fid/releases" in reason
    with pytest.raises(FileNotFoundError, match="MASKGAN_INCEPTION_WEIGHTS"):
        fid(_images(2), _images(2), weights=missing)


def test_fid_inception_has_the_parameter_count_of_the_ported_tensorflow_network():
    # torchvision's inception_v3 has 27,161,264 parameters; without its auxiliary classifier
    # (3,326,696) and with 1008 instead of 1000 classes (+16,392): 23,850,960.
    with torch.device("meta"):
        net = InceptionV3Features()
    assert sum(p.numel() for p in net.parameters()) == 23_850_960


def test_inception_weights_in_the_pytorch_fid_layout_load_and_give_2048_features(tmp_path):
    torch.manual_seed(0)
    # pytorch-fid's file predates BatchNorm's batch counter: no 'num_batches_tracked' entries
    state = {k: v for k, v in InceptionV3Features().state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    net = load_inception(path)
    assert torch.equal(net.state_dict()["Mixed_7c.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])
    assert fid_available(path) == (True, str(path))
    with torch.no_grad():
        feats = net(_images(1, 16))  # resized to 299x299 inside
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all()


def test_a_file_of_another_network_is_rejected_as_not_the_fid_inception(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not the FID Inception"):
        load_inception(path)


def test_fid_compares_the_features_of_two_image_sets():
    # any (N, D) extractor plugs in; the per-image channel means are shifted by 0.5 -> 0.25 x 3 channels
    means = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    means.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1)))  # gives the extractor a device
    x = _images(8, 16)
    from maskgan.metrics import gaussian_stats
    s = gaussian_stats(means(x))[1]
    assert fid(x, x, model=means) == pytest.approx(0.0, abs=fid_rounding(s, s))
    # The features are float32 means of 256 pixels, each off by up to log2(256) * 2^-24 of its size from
    # the exact mean (in an order that depends on the vector width); x + 0.5 is rounded too. The mean
    # difference 0.5 per channel then carries ~3e-6 relative error and its square twice that: rel 1e-5.
    assert fid(x, x + 0.5, model=means) == pytest.approx(0.75, rel=1e-5)


def test_fid_from_few_features_in_many_dimensions_matches_the_covariance_formula():
    # fewer samples than dimensions takes the n x n shortcut; it must agree with Eq. 6 on covariances
    from maskgan.metrics import gaussian_stats
    g = torch.Generator().manual_seed(0)
    fa, fb = torch.randn(5, 12, generator=g, dtype=torch.float64), torch.randn(7, 12, generator=g, dtype=torch.float64)
    (mu_a, s_a), (mu_b, s_b) = gaussian_stats(fa), gaussian_stats(fb)
    expected = frechet_distance(mu_a, s_a, mu_b, s_b)
    # both routes are exact formulas; each carries the rounding bound above (its 12 - 4 zero eigenvalues)
    tolerance = 2 * fid_rounding(s_a, s_b)
    assert fid_from_features(fa, fb) == pytest.approx(expected, abs=tolerance)
    assert fid_from_features(fb, fa) == pytest.approx(expected, abs=tolerance)
    assert tolerance < 1e-5 * expected  # still far below what a wrong formula would be off by


# --- label sequences and edited regions ----------------------------------------------------------

def test_label_change_fraction_of_a_constant_sequence_is_zero():
    seq = _square().expand(5, 16, 16)
    out = label_change_fraction(seq)
    assert out["mean"] == 0 and out["max"] == 0


def test_label_change_fraction_of_a_known_change_is_its_fraction():
    m0 = torch.zeros(10, 10, dtype=torch.int64)
    m1 = m0.clone()
    m1[0] = 3        # 10 of 100 pixels change
    m2 = m1.clone()
    m2[1:4] = 5      # 30 more change
    out = label_change_fraction([m0, m1, m2])
    assert out["per_step"].tolist() == pytest.approx([0.1, 0.3])
    assert out["mean"] == pytest.approx(0.2) and out["max"] == pytest.approx(0.3)


def test_label_change_fraction_needs_two_steps():
    with pytest.raises(ValueError, match="at least 2 steps, got 1"):
        label_change_fraction(torch.zeros(1, 4, 4, dtype=torch.int64))


def test_edit_region_without_dilation_is_exactly_the_changed_pixels():
    before, after = _square(), _square(left=6)
    assert torch.equal(edit_region(before, after, dilate=0), before != after)


def test_edit_region_grows_a_changed_pixel_into_a_square_of_side_two_dilate_plus_one():
    before = torch.zeros(1, 16, 16, dtype=torch.int64)
    after = before.clone()
    after[0, 8, 8] = 4
    region = edit_region(before, after, dilate=2)
    assert region.sum() == 25 and region[0, 6:11, 6:11].all()


# --- face parser ---------------------------------------------------------------------------------

def test_parser_gives_full_resolution_logits_for_the_19_classes():
    assert FaceParser(base=4, depth=2)(torch.zeros(2, 3, 32, 32)).shape == (2, 19, 32, 32)
    assert FaceParser(base=4, depth=2, up="transposed")(torch.zeros(1, 3, 16, 16)).shape == (1, 19, 16, 16)


def test_parser_parse_returns_int64_label_maps_and_keeps_the_training_mode():
    net = FaceParser(base=4, depth=2).train()
    labels = net.parse(torch.zeros(2, 3, 16, 16))
    assert labels.dtype == torch.int64 and labels.shape == (2, 16, 16)
    assert net.training


def test_parser_gradients_reach_every_parameter():
    net = FaceParser(base=4, depth=3)
    net(torch.randn(2, 3, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_parser_rejects_a_size_not_divisible_by_two_to_the_depth():
    with pytest.raises(ValueError, match=r"multiples of 16 and at least 16; got 40x40"):
        FaceParser(base=4, depth=4)(torch.zeros(1, 3, 40, 40))


def test_parser_rejects_the_wrong_number_of_channels():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(1, 19, 16, 16\)"):
        FaceParser(base=4, depth=2)(torch.zeros(1, 19, 16, 16))


def test_parser_learns_one_image_mask_pair():
    torch.manual_seed(0)
    target = torch.zeros(1, 32, 32, dtype=torch.int64)
    target[:, 4:28, 6:26] = 1      # face
    target[:, 10:14, 9:14] = 4     # eyes
    target[:, 10:14, 18:23] = 5
    target[:, 20:24, 12:20] = 10   # mouth
    palette = torch.rand(19, 3) * 2 - 1
    image = palette[target].permute(0, 3, 1, 2) + 0.1 * torch.randn(1, 3, 32, 32)
    net = FaceParser(base=8, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(image), target).backward()
        opt.step()
    assert pixel_accuracy(net.parse(image), target) > 0.9

"""Edits composited into their face (maskgan.composite): only what the mask changed may change."""
import math

import numpy as np
import pytest
import torch

from maskgan.composite import (BLENDS, DEFAULT_BLEND, RERENDER, composite, default_margin, edit_alpha, grow,
                               laplacian_blend, poisson_clone, seam_band)
from maskgan.errors import ConfigError, DataError


def _brute_distance(region: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of every pixel to the nearest region pixel, by brute force."""
    ys, xs = torch.nonzero(region, as_tuple=True)
    h, w = region.shape
    gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    d2 = (gy[..., None] - ys) ** 2 + (gx[..., None] - xs) ** 2
    return d2.min(-1).values.double().sqrt()


def _edit(size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    render = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    label = torch.zeros(2, size, size, dtype=torch.long)
    label[:, 8:24, 8:24] = 1
    edited = label.clone()
    edited[0, 12:16, 10:20] = 10  # a mouth painted in
    edited[1, 20:22, 4:6] = 13    # a speck of hair
    return image, render, label, edited


@pytest.mark.parametrize("px", [0, 1, 2, 3, 5])
def test_grow_takes_every_pixel_within_the_euclidean_distance(px):
    g = torch.Generator().manual_seed(px)
    region = torch.rand(20, 24, generator=g) > 0.97
    expected = _brute_distance(region) <= px
    assert torch.equal(grow(region, px), expected)


def test_alpha_is_one_on_changed_pixels_ramps_over_the_feather_and_is_zero_beyond_the_margin():
    changed = torch.zeros(1, 21, 21, dtype=torch.bool)
    changed[0, 10, 10] = True
    alpha = edit_alpha(changed, margin=3, feather=2)[0]
    d = _brute_distance(changed[0])
    assert alpha[10, 10] == 1
    assert torch.all(alpha[d > 3] == 0)
    ring = torch.ceil(d - 1e-9)  # ring k: within distance k but not k - 1
    for k, expected in ((1, 1.0), (2, 2 / 3), (3, 1 / 3)):
        assert torch.allclose(alpha[ring == k], torch.tensor(expected)), k


def test_feather_zero_is_a_hard_edge_at_the_margin():
    changed = torch.zeros(1, 16, 16, dtype=torch.bool)
    changed[0, 5:8, 5:8] = True
    assert torch.equal(edit_alpha(changed, 2, 0), grow(changed, 2).float())


@pytest.mark.parametrize("blend", BLENDS)
def test_every_blend_keeps_the_input_bit_for_bit_beyond_the_margin(blend):
    image, render, label, edited = _edit()
    for margin in (0, 1, 3):
        out = composite(image, render, label, edited, blend, margin=margin, feather=margin)
        far = ~grow(label != edited, margin)
        assert torch.equal(out.image.permute(1, 0, 2, 3)[:, far], image.permute(1, 0, 2, 3)[:, far])
        assert torch.all(out.alpha[far] == 0)
        assert out.image.min() >= -1 and out.image.max() <= 1


@pytest.mark.parametrize("blend", BLENDS)
def test_the_composite_is_alpha_times_layer_plus_the_rest_of_the_input(blend):
    image, render, label, edited = _edit()
    out = composite(image, render, label, edited, blend)
    a = out.alpha[:, None]
    assert torch.allclose(out.image, (a * out.layer + (1 - a) * image).clamp(-1, 1), atol=1e-6)


def test_a_hard_paste_takes_the_rendering_on_the_changed_pixels():
    image, render, label, edited = _edit()
    out = composite(image, render, label, edited, "hard", margin=1)
    inside = grow(label != edited, 1)
    assert torch.equal(out.image.permute(1, 0, 2, 3)[:, inside], render.permute(1, 0, 2, 3)[:, inside])


def test_rerender_is_the_rendering_itself():
    image, render, label, edited = _edit()
    assert torch.equal(composite(image, render, label, edited, RERENDER).image, render)


def test_an_unchanged_mask_returns_the_input():
    image, render, label, _ = _edit()
    for blend in BLENDS:
        assert torch.equal(composite(image, render, label, label.clone(), blend).image, image)


def test_poisson_cloning_of_a_shifted_copy_gives_back_the_target():
    # the guidance field of target + c is the target's own: the solution inside is the target
    g = torch.Generator().manual_seed(3)
    target = torch.rand(1, 3, 24, 24, generator=g) * 0.5
    region = torch.zeros(1, 24, 24, dtype=torch.bool)
    region[0, 6:18, 5:19] = True
    out = poisson_clone(target + 0.3, target, region, tol=1e-7, max_iter=5000)
    assert (out - target).abs().max() < 1e-4


def test_poisson_cloning_keeps_the_sources_gradients_inside():
    g = torch.Generator().manual_seed(4)
    source, target = torch.rand(2, 1, 3, 20, 20, generator=g)
    region = torch.zeros(1, 20, 20, dtype=torch.bool)
    region[0, 4:16, 4:16] = True
    out = poisson_clone(source, target, region, tol=1e-7, max_iter=5000)

    def lap(x):
        return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * x[..., 1:-1, 1:-1]
    inner = region[:, 1:-1, 1:-1]
    assert torch.allclose(lap(out)[:, :, inner[0]], lap(source)[:, :, inner[0]], atol=1e-4)
    assert torch.equal(out[:, :, ~region[0]], target[:, :, ~region[0]])


def test_laplacian_blend_of_a_constant_alpha_is_one_image():
    g = torch.Generator().manual_seed(5)
    a, b = torch.rand(2, 1, 3, 16, 16, generator=g)
    ones = torch.ones(1, 16, 16)
    assert torch.allclose(laplacian_blend(a, b, ones, 2), a, atol=1e-6)
    assert torch.allclose(laplacian_blend(a, b, ones * 0, 2), b, atol=1e-6)


def test_the_seam_band_straddles_the_edge_of_the_grown_region():
    changed = torch.zeros(1, 21, 21, dtype=torch.bool)
    changed[0, 10, 10] = True
    band = seam_band(changed, margin=3, width=1)[0]
    d = _brute_distance(changed[0])
    assert torch.equal(band, (d > 2) & (d <= 4))


def test_the_default_margin_scales_with_the_image_side():
    assert [default_margin(s) for s in (32, 64, 128, 256, 512)] == [1, 1, 2, 4, 8]


def test_bad_blend_margin_and_shapes_are_refused_by_name():
    image, render, label, edited = _edit()
    with pytest.raises(ConfigError, match="unknown blend 'soft'.*poisson"):
        composite(image, render, label, edited, "soft")
    with pytest.raises(ConfigError, match="margin must be a whole number of pixels >= 0, got -1"):
        composite(image, render, label, edited, margin=-1)
    with pytest.raises(DataError, match="one size"):
        composite(image, render[..., :16, :16], label, edited)


# --- through the Editor ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def editor(smoke_editor):
    return smoke_editor


def test_editor_edit_composites_by_default_and_rerender_is_the_papers_edit(editor):
    image, _, label, edited = _edit()
    image, label, edited = image[0], label[0], edited[0]
    out = editor.edit(image, label, edited)
    full = editor.rerender(image, label, edited)
    assert torch.equal(full, editor.render(edited, editor.style(image, label)))
    far = ~grow(label != edited, default_margin(32))
    assert torch.equal(out[:, far], image[:, far])
    assert not torch.equal(out, image)  # the changed pixels did change
    comp = editor.composite(image, label, edited)
    assert torch.equal(comp.image, out) and comp.alpha.shape == (32, 32) and DEFAULT_BLEND == "poisson"
    assert torch.equal(editor.edit(image, label, edited, blend=RERENDER), full)


def test_editor_composite_takes_a_rendering_made_before(editor):
    image, _, label, edited = _edit()
    image, label, edited = image[0], label[0], edited[0]
    preview = torch.zeros(3, 32, 32)
    comp = editor.composite(image, label, edited, blend="hard", render=preview)
    inside = grow(label != edited, default_margin(32))
    assert torch.all(comp.image[:, inside] == 0)


def test_an_edited_mask_of_another_size_is_refused(editor):
    image, _, label, _ = _edit()
    with pytest.raises(DataError, match="edited label map is"):
        editor.edit(image[0], label[0], np.zeros((16, 16), dtype=np.int64))


def test_the_alpha_reaches_no_farther_than_margin_plus_feather_rings(editor):
    image, _, label, edited = _edit()
    comp = editor.composite(image[0], label[0], edited[0], blend="feather", margin=2, feather=1)
    d = _brute_distance((label[0] != edited[0]))
    assert torch.all(comp.alpha[d > 2] == 0) and torch.all(comp.alpha[d == 0] == 1)
    assert math.isclose(float(comp.alpha[(d > 1) & (d <= 2)].max()), 0.5)

"""The `paper` preset builds networks with exactly the parameter counts of the authors' demo
(DESIGN.md section 2). Built on the meta device: no memory, no weight initialisation cost."""
import torch

from maskgan.config import Config
from maskgan.nn import build_blender, build_discriminator, build_dmn, build_maskvae, count_parameters


def _paper():
    return Config.preset("paper")


def test_paper_dmn_parts_have_the_demo_parameter_counts():
    with torch.device("meta"):
        dmn = build_dmn(_paper())
    assert dmn.parameter_counts() == {
        "backbone": 88_111_363,
        "style_encoder": 1_338_464,
        "label_encoder": 252_768,
        "total": 89_702_595,
    }
    assert count_parameters(dmn) == 89_702_595


def test_paper_dmn_style_vector_holds_16384_adain_parameters():
    with torch.device("meta"):
        dmn = build_dmn(_paper())
    # 4 blocks x 2 norms x (mean 1024 + std 1024)
    assert dmn.n_style_params == 16_384


def test_paper_discriminator_has_the_demo_parameter_count():
    with torch.device("meta"):
        assert count_parameters(build_discriminator(_paper())) == 5_568_386


def test_paper_blender_has_the_demo_parameter_count():
    with torch.device("meta"):
        assert count_parameters(build_blender(_paper())) == 4_329_443


def test_paper_maskvae_at_512_has_the_demo_parameter_count():
    cfg = _paper()
    assert (cfg.data.size, cfg.model.maskvae.base_ch, cfg.model.maskvae.latent_dim) == (512, 32, 1024)
    with torch.device("meta"):
        assert count_parameters(build_maskvae(cfg)) == 170_619_571

"""Configuration: presets, JSON round trip, dotted overrides, and the errors bad values get."""
import json

import pytest

from maskgan.config import PRESETS, Config, ConfigError, DMNConfig


@pytest.mark.parametrize("name", ["paper", "cpu", "smoke"])
def test_each_preset_survives_a_json_round_trip(name):
    cfg = Config.preset(name)
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert isinstance(again.model.loss.vgg_layer_weights, tuple)


def test_paper_preset_has_the_demo_hyper_parameters():
    cfg = Config.preset("paper")
    assert cfg.data.size == 512 and cfg.data.dataset == "celebamask-hq"
    assert cfg.model.dmn == DMNConfig(ngf=64, n_down=4, n_blocks=4, enc_ch=16, enc_n_down=5)
    assert (cfg.model.maskvae.base_ch, cfg.model.maskvae.latent_dim) == (32, 1024)
    assert (cfg.model.blender.ngf, cfg.model.blender.n_down, cfg.model.blender.n_blocks) == (32, 3, 3)
    d = cfg.model.discriminator
    assert (d.ndf, d.n_layers, d.num_D) == (64, 3, 2)
    loss = cfg.model.loss
    assert (loss.gan_mode, loss.lambda_feat, loss.lambda_percept, loss.lambda_kl) == ("lsgan", 10.0, 10.0, 1e-5)
    assert loss.vgg_layer_weights == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def test_cpu_and_smoke_presets_are_small_synthfaces_configs():
    assert Config.preset("cpu").data.size == 64 and Config.preset("smoke").data.size == 32
    assert all(Config.preset(n).data.dataset == "synthfaces" for n in ("cpu", "smoke"))


def test_presets_are_fresh_objects():
    a = Config.preset("cpu")
    a.model.dmn.ngf = 999
    assert Config.preset("cpu").model.dmn.ngf != 999


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="paper, cpu, smoke"):
        Config.preset("huge")
    assert set(PRESETS) == {"paper", "cpu", "smoke"}


def test_with_overrides_sets_dotted_keys_and_leaves_the_original_unchanged():
    base = Config.preset("smoke")
    cfg = base.with_overrides({"model.dmn.ngf": 32, "data.size": 64, "seed": 7})
    assert (cfg.model.dmn.ngf, cfg.data.size, cfg.seed) == (32, 64, 7)
    assert base.model.dmn.ngf == 8 and base.data.size == 32


def test_with_overrides_of_an_unknown_key_lists_the_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.dmn\.width'.*model\.dmn\.ngf"):
        Config.preset("smoke").with_overrides({"model.dmn.width": 32})


def test_with_overrides_checks_types():
    cfg = Config.preset("smoke")
    with pytest.raises(ConfigError, match=r"model\.dmn\.ngf: expected int, got str '32'"):
        cfg.with_overrides({"model.dmn.ngf": "32"})
    with pytest.raises(ConfigError, match=r"data\.flip: expected bool"):
        cfg.with_overrides({"data.flip": 1})
    assert cfg.with_overrides({"model.loss.lambda_feat": 5}).model.loss.lambda_feat == 5.0  # int -> float


def test_invalid_choices_are_rejected_with_the_valid_ones():
    with pytest.raises(ConfigError, match="lsgan, hinge, original"):
        Config.preset("smoke").with_overrides({"model.loss.gan_mode": "wgan"})
    with pytest.raises(ConfigError, match="synthfaces, celebamask-hq"):
        Config.preset("smoke").with_overrides({"data.dataset": "ffhq"})
    with pytest.raises(ConfigError, match="must be >= 1"):
        DMNConfig(ngf=0)


def test_from_dict_fills_missing_keys_with_defaults_and_rejects_unknown_ones():
    cfg = Config.from_dict({"model": {"dmn": {"ngf": 16}}, "seed": 3})
    assert cfg.model.dmn.ngf == 16 and cfg.model.dmn.n_blocks == 4 and cfg.seed == 3
    with pytest.raises(ConfigError, match="unknown config key 'model.extra'"):
        Config.from_dict({"model": {"extra": 1}})


def test_save_and_load_round_trip(tmp_path):
    cfg = Config.preset("cpu").with_overrides({"model.loss": {"gan_mode": "hinge"}})
    cfg.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == cfg
    assert cfg.model.loss.gan_mode == "hinge"
    assert cfg.model.loss.vgg_weights == Config.preset("cpu").model.loss.vgg_weights  # a section override merges


def test_device_auto_resolves_to_an_available_device():
    assert Config.preset("smoke").torch_device().type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="Config.device"):
        Config.preset("smoke").with_overrides({"device": "tpu"})

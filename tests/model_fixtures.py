"""Helpers shared by the widget tests: tiny untrained models that respond visibly to their inputs."""
import math

import torch


def spread_weights(module: torch.nn.Module) -> torch.nn.Module:
    """Re-draw weights with unit-gain fan-in scaling. The kit's N(0, 0.02) init makes an untrained
    DMN ignore its style input and an untrained MaskVAE decode one class everywhere; spread weights
    make every input matter, so the tests can see frames change."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0.0, 1.5 / math.sqrt(m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
    return module


def spread_editor(cfg, vae: bool = True):
    """An Editor over seed-0 smoke models with spread weights: the DMN, and the MaskVAE when ``vae``."""
    from maskgan.editing import Editor
    from maskgan.nn import build_dmn, build_maskvae
    torch.manual_seed(0)
    ed = Editor(spread_weights(build_dmn(cfg)), spread_weights(build_maskvae(cfg)) if vae else None)
    ed.cfg = cfg
    return ed

"""Fixtures shared by the test modules."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: frames and tiny trainings are as fast with one, and on a
    busy machine two threads wait on each other. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smoke_editor(tmp_path_factory):
    """An Editor over a run directory holding one untrained smoke-preset DMN checkpoint (seed 0)."""
    from maskgan.checkpoint import save_checkpoint
    from maskgan.config import Config
    from maskgan.editing import Editor
    from maskgan.nn import build_dmn
    cfg = Config.preset("smoke")
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run / "dmn", 1, {"dmn": build_dmn(cfg)}, {}, {"stage": "dmn", "config": cfg.to_dict()})
    return Editor.from_run(run)

"""CPU threads next to other work (maskgan.device.choose_threads): the kit takes the free cores unless
the user fixed the thread count. The step times behind the rule are `python -m maskgan bench --only load`."""
import pytest
import torch

from maskgan import device as dev
from maskgan.__main__ import run
from maskgan.errors import ConfigError


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv(dev.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


def _fake_machine(monkeypatch, cores: int, busy_fraction: float):
    """/proc/stat as a machine of ``cores`` cores on which others keep ``busy_fraction`` of the time busy."""
    ticks = iter([(0, 0), (int(1000 * (1 - busy_fraction)), 1000)])
    monkeypatch.setattr(dev, "_cpu_times", lambda: next(ticks))
    monkeypatch.setattr(dev.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(dev, "available_cores", lambda: cores)


@pytest.mark.parametrize("cores, busy, free", [(2, 0.02, 2), (2, 0.5, 1), (2, 1.0, 1), (8, 0.25, 6), (4, 0.6, 2)])
def test_free_cores_counts_the_cores_others_leave_idle(monkeypatch, cores, busy, free):
    _fake_machine(monkeypatch, cores, busy)
    assert dev.free_cores(sample_s=0) == free


def test_the_free_cores_become_the_thread_count_and_a_busy_machine_is_said(monkeypatch):
    _fake_machine(monkeypatch, 2, 0.5)
    said = []
    assert dev.choose_threads(report=said.append) == 1 == torch.get_num_threads()
    assert said and "1 of 2 cores are busy" in said[0] and dev.THREADS_ENV in said[0]


def test_a_thread_count_the_user_fixed_is_kept(monkeypatch):
    _fake_machine(monkeypatch, 2, 0.5)
    monkeypatch.setenv(dev.THREADS_ENV, "2")
    assert dev.choose_threads(report=None) == 2 == torch.get_num_threads()
    monkeypatch.delenv(dev.THREADS_ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert dev.choose_threads(report=None) == 2  # OMP_NUM_THREADS: torch's own choice stands
    monkeypatch.setenv(dev.THREADS_ENV, "two")
    with pytest.raises(ConfigError, match="MASKGAN_THREADS='two' is not a thread count"):
        dev.choose_threads()


def test_the_program_entry_chooses_threads_for_computing_commands_only(monkeypatch, capsys):
    monkeypatch.setenv(dev.THREADS_ENV, "1")
    torch.set_num_threads(2)
    assert run(["evaluate"]) == 2  # no run named: the kit's error, after the threads were set
    assert torch.get_num_threads() == 1 and "needs --run-dir" in capsys.readouterr().err
    torch.set_num_threads(2)
    monkeypatch.setenv(dev.THREADS_ENV, "bad")
    assert run(["evaluate"]) == 2 and "is not a thread count" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["bench", "--help"])  # not a computing command: the bad value is not even read
    assert torch.get_num_threads() == 2

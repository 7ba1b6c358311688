"""An OS error is the kit's error too (issue 22, weak items): a full disk, a read-only run directory,
a file where a folder belongs, an unreadable weights file -- one paragraph naming the path and what
to do, exit status 2, no traceback, and nothing already written lost.

The full disk and the read-only folder are real: a small tmpfs mounted for the test (it needs root and
permission to mount; otherwise those tests are skipped, saying why)."""
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from maskgan.__main__ import main
from maskgan.config import Config
from maskgan.errors import StorageError
from maskgan.train import train


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("os_errors_run")
    cfg = Config.preset("smoke").with_overrides({"cadence.sample_every": 1000})
    for stage in ("vae", "dmn", "parser"):
        train(stage, cfg, run_dir, progress=False)
    return run_dir


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")


@pytest.fixture
def small_disk(tmp_path):
    """A 12 MiB tmpfs; ``fill()`` takes all of its free space."""
    disk = tmp_path / f"disk_{uuid.uuid4().hex[:6]}"
    _mount_tmpfs(disk, "12m")

    class Disk:
        path = disk

        @staticmethod
        def fill(leave: int = 0):
            """Take the disk's free space, all but about ``leave`` bytes."""
            with open(disk / "filler", "wb") as f:
                try:
                    while shutil.disk_usage(disk).free > leave + (1 << 16):
                        f.write(b"\0" * (1 << 16))
                        f.flush()
                    if not leave:
                        f.write(b"\0" * (1 << 16))
                        f.flush()
                except OSError:
                    pass
            assert shutil.disk_usage(disk).free <= leave + (1 << 16)

        @staticmethod
        def read_only():
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    yield Disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and "\n" not in err, err
    return err


def test_training_on_a_full_disk_names_the_checkpoint_and_keeps_the_last_one(smoke_run, small_disk, capsys):
    run = small_disk.path / "run"
    shutil.copytree(smoke_run / "dmn", run / "dmn")
    before = sorted(p.name for p in (run / "dmn" / "checkpoints").iterdir())
    small_disk.fill()
    code = main(["train", "dmn", "--preset", "smoke", "--run-dir", str(run), "--device", "cpu", "--resume",
                 "--extend-to", "3", "--set", "cadence.sample_every=1000"])
    err = _err(capsys)
    assert code == 2, "before: RuntimeError [enforce fail at inline_container.cc] with a traceback"
    assert f"no space left on the disk that holds {run / 'dmn'}" in err
    assert "free some space" in err
    assert sorted(p.name for p in (run / "dmn" / "checkpoints").iterdir()) == before, "nothing half-written"


def test_a_checkpoint_whose_state_fills_the_disk_is_a_storage_error_and_leaves_nothing(small_disk):
    """torch.save reports a full disk as a RuntimeError of its zip writer; the kit says what it is."""
    from maskgan.checkpoint import list_checkpoints, save_checkpoint
    stage = small_disk.path / "run" / "dmn"
    small_disk.fill(leave=256 << 10)  # room for the weights and config, not for the 2 MiB state
    step = stage / "checkpoints" / "step_0000001"
    with pytest.raises(StorageError, match=f"no space left on the disk that holds {step}"):
        save_checkpoint(stage, 1, {"net": torch.nn.Linear(4, 4)}, {"big": torch.zeros(1 << 19)}, {"config": {}})
    assert list_checkpoints(stage) == [] and list((stage / "checkpoints").iterdir()) == []


def test_evaluating_on_a_full_disk_names_the_run_directory(smoke_run, small_disk, capsys):
    run = small_disk.path / "run"
    shutil.copytree(smoke_run, run)
    small_disk.fill()
    assert main(["evaluate", "--run-dir", str(run), "--n", "2", "--edits", "1"]) == 2  # before: OSError traceback
    assert f"no space left on the disk that holds {run}" in _err(capsys)


def test_importing_a_parser_onto_a_full_disk_names_the_folder(tmp_path, small_disk, capsys):
    from faceparsing_layout import RefBiSeNet
    torch.manual_seed(0)
    torch.save(RefBiSeNet(19).state_dict(), tmp_path / "79999_iter.pth")
    small_disk.fill()
    out = small_disk.path / "run"
    assert main(["import-weights", "bisenet", str(tmp_path / "79999_iter.pth"), "--out", str(out)]) == 2
    assert f"no space left on the disk that holds {out}" in _err(capsys)
    assert not list((out / "face_parsers").glob("*")), "no temporary file is left behind"


def test_a_read_only_run_directory_is_named(smoke_run, small_disk, capsys):
    run = small_disk.path / "run"
    shutil.copytree(smoke_run, run)
    small_disk.read_only()
    assert main(["evaluate", "--run-dir", str(run), "--n", "2", "--edits", "1"]) == 2
    assert f"{run / 'metrics.json'} is on a read-only file system; choose a folder you can write" in _err(capsys)
    assert main(["train", "ebst", "--preset", "smoke", "--run-dir", str(run), "--device", "cpu"]) == 2
    assert f"{run / 'ebst'} is on a read-only file system" in _err(capsys)


def test_a_run_directory_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", "dmn", "--preset", "smoke", "--run-dir", str(tmp_path / "notes.txt"), "--device", "cpu"]) == 2
    assert f"{tmp_path / 'notes.txt'} is a file, but a folder is needed there" in _err(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_out_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "out").write_text("mine")
    assert main(["synth", "--out", str(tmp_path / "out"), "--train", "1", "--val", "1", "--test", "1",
                 "--size", "32"]) == 2  # before: FileExistsError traceback
    assert f"{tmp_path / 'out'} is a file, but a folder is needed there" in _err(capsys)
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux's /proc/self/mem")
def test_a_weights_file_that_cannot_be_read_is_named(tmp_path, capsys):
    """A file whose bytes the OS cannot deliver: /proc/self/mem fails its first read with EIO, as a
    failing disk does (a chmod 000 file would not do: the tests may run as root, who reads it anyway)."""
    bad = tmp_path / "latest_net_G.pth"
    bad.symlink_to("/proc/self/mem")
    assert main(["import-weights", "authors-generator", str(bad), "--run-dir", str(tmp_path / "run")]) == 2
    assert f"weights file {bad} cannot be read (Input/output error)" in _err(capsys)


def test_storage_errors_are_os_errors_and_kit_errors():
    from maskgan.errors import MaskGANError, storage_error
    err = storage_error(OSError(28, "No space left on device"), "runs/x")
    assert isinstance(err, StorageError) and isinstance(err, MaskGANError) and isinstance(err, OSError)
    assert str(err).startswith("no space left on the disk that holds runs/x")


def test_the_debug_flag_still_shows_an_os_errors_traceback(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError):
        main(["--debug", "synth", "--out", str(tmp_path / "f"), "--train", "1", "--val", "1", "--test", "1",
              "--size", "32"])


def test_the_program_entry_exits_2_on_an_os_error(tmp_path):
    (tmp_path / "f").write_text("x")
    done = subprocess.run([sys.executable, "-m", "maskgan", "synth", "--out", str(tmp_path / "f"), "--train", "1",
                           "--val", "1", "--test", "1", "--size", "32"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "is a file" in done.stderr

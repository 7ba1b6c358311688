"""The command line: every command turns the kit's errors into one paragraph and exit status 2."""
import subprocess
import sys
from pathlib import Path

import pytest

from maskgan.__main__ import main
from maskgan.errors import MaskGANError

ROOT = Path(__file__).resolve().parents[1]


def _bad_calls(tmp: Path) -> dict[str, list[str]]:
    """One call per command that must fail with a MaskGANError (missing stage, bad value, bad file ...)."""
    return {
        "train": ["train", "ebst", "--preset", "smoke", "--run-dir", str(tmp / "empty"), "--device", "cpu"],
        "evaluate": ["evaluate", "--run-dir", str(tmp / "empty")],
        "ablation": ["ablation", "--preset", "smoke", "--run-dir", str(tmp / "r"), "--set", "train.no_such_key=1"],
        "pipeline": ["pipeline", "--preset", "smoke", "--run-dir", str(tmp / "p"), "--only", "99"],
        "synth": ["synth", "--out", str(tmp / "s"), "--size", "7", "--train", "1"],
        "prepare-celebamask": ["prepare-celebamask", "--src", str(tmp / "no_archive"), "--out", str(tmp / "o")],
        "import-weights": ["import-weights", "authors-generator", str(tmp / "missing.pth"), "--run-dir", str(tmp / "a")],
        "bench": ["bench", "--only", "no_such_benchmark"],
    }


@pytest.mark.parametrize("command", list(_bad_calls(Path("/x"))))
def test_each_command_prints_one_paragraph_and_exits_2_on_a_kit_error(command, tmp_path, capsys):
    assert main(_bad_calls(tmp_path)[command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and "\n\n" not in err


def test_demo_reports_a_failing_notebook_the_same_way(tmp_path, capsys, monkeypatch):
    from maskgan import pipeline
    from maskgan.errors import PipelineError

    def failing(*args, **kwargs):
        raise PipelineError("notebook 02_dmn_stage1.ipynb failed in cell 4")
    monkeypatch.setattr(pipeline, "run_pipeline", failing)
    assert main(["demo", "--run-dir", str(tmp_path)]) == 2
    assert "02_dmn_stage1" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(MaskGANError):
        main(["--debug", "evaluate", "--run-dir", str(tmp_path)])


def test_negative_step_counts_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "dmn", "--steps", "-3", "--run-dir", str(tmp_path)])
    assert exit_.value.code == 2 and "positive number of steps, got -3" in capsys.readouterr().err


_NONSENSE = [
    (["evaluate", "--run-dir", "R", "--edits", "-2"], "--edits: expected a whole number >= 0, got -2"),
    (["evaluate", "--run-dir", "R", "--n", "-1"], "--n: expected a positive whole number, got -1"),
    (["evaluate", "--run-dir", "R", "--n", "0"], "--n: expected a positive whole number, got 0"),
    (["curves", "--run-dir", "R", "--every", "0"], "--every: expected a positive whole number, got 0"),
    (["curves", "--run-dir", "R", "--n", "1.5"], "--n: expected a positive whole number, got '1.5'"),
    (["study", "--train", "--seeds", "a,b"],
     "--seeds: expected comma-separated whole numbers >= 0 (e.g. 0,1,2), got 'a,b'"),
    (["study", "--train", "--seeds", "1,1"], "--seeds: expected distinct seeds, got '1,1'"),
    (["ablation", "--run-dir", "R", "--edits", "-1"], "--edits: expected a whole number >= 0, got -1"),
    (["train", "dmn", "--run-dir", "R", "--seed", "-5"], "--seed: expected a whole number >= 0, got -5"),
    (["export-pretrained", "--run-dir", "R", "--name", "x", "--title", "t", "--recipe", "r.json", "--n", "-3"],
     "--n: expected a positive whole number, got -3"),
    (["synth", "--out", "R", "--workers", "0"], "--workers: expected a positive whole number, got 0"),
    (["synth", "--out", "R", "--train", "-1"], "--train: expected a whole number >= 0, got -1"),
    (["prepare-celebamask", "--src", "S", "--out", "R", "--limit", "0"], "--limit: expected a positive whole number"),
    (["import-weights", "authors-generator", "G.pth", "--run-dir", "R", "--size", "-512"],
     "--size: expected a positive whole number, got -512"),
]


@pytest.mark.parametrize("argv, message", _NONSENSE, ids=[" ".join(a[:1] + a[-2:]) for a, _ in _NONSENSE])
def test_nonsense_numbers_are_refused_naming_the_option_before_anything_runs(argv, message, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "metrics.json").write_text('{"eval": {"kept": true}}')
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert (tmp_path / "R" / "metrics.json").read_text() == '{"eval": {"kept": true}}'  # the evaluation is kept
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["R", "metrics.json"]


def test_the_data_prep_script_is_the_same_command(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "data_prep" / "prepare_celebamask.py"), "--src",
                           str(tmp_path / "nothing"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_the_demo_summary_does_not_touch_the_checkout_and_publishing_is_explicit(tmp_path, capsys, monkeypatch):
    from maskgan import pipeline
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "00_x.png").write_bytes(b"png")
    monkeypatch.setattr(pipeline, "run_pipeline", lambda *a, **k: [])
    calls = []
    monkeypatch.setattr(pipeline, "publish_figures", lambda *a, **k: calls.append(a) or [])
    assert main(["demo", "--run-dir", str(run)]) == 0
    assert calls == [] and "make figures" in capsys.readouterr().out
    dest = tmp_path / "repo_figures"
    monkeypatch.undo()
    copied = pipeline.publish_figures(run, dest)
    assert [p.name for p in copied] == ["00_x.png"] and (dest / "00_x.png").read_bytes() == b"png"

"""What makes a demo's numbers checkable against the README's (docs/reproducibility.md): the demo's
kernels get one thread count and the instruction-set pins of maskgan.device, the pipeline records
them, and the summary compares the run with the recorded runs (same settings: to the bit; otherwise
the band of all of them)."""
import json

import pytest

from maskgan import device as dev
from maskgan.run import Run
from maskgan.summary import HEADLINE, demo_values, reproduction

PINS = dict(dev.PINNED_KERNELS)


def test_the_pins_are_set_where_the_user_has_not_set_them(monkeypatch):
    monkeypatch.setattr(dev, "_has_avx2", lambda: True)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert dev.pinned_kernel_env({}) == PINS
    assert dev.pinned_kernel_env({"MKL_CBWR": "COMPATIBLE"}) == {k: v for k, v in PINS.items() if k != "MKL_CBWR"}


def test_no_pins_without_avx2_or_on_another_architecture(monkeypatch):
    monkeypatch.setattr(dev, "_has_avx2", lambda: False)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert dev.pinned_kernel_env({}) == {}
    monkeypatch.setattr(dev, "_has_avx2", lambda: True)
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    assert dev.pinned_kernel_env({}) == {}


def test_the_demo_gives_every_kernel_the_thread_count_it_took_also_one_the_user_fixed(monkeypatch):
    """Each kernel would choose its own count from the load of the moment; the run must also record
    the count when the user fixed it (a recorded run names its thread count)."""
    import torch

    from maskgan.__main__ import _demo_kernel_env
    for fixed in (None, "1"):
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        if fixed:
            monkeypatch.setenv(dev.THREADS_ENV, fixed)
        before = torch.get_num_threads()
        try:
            dev.choose_threads(report=None)  # what the program's entry does before the demo starts
            assert _demo_kernel_env()[dev.THREADS_ENV] == str(torch.get_num_threads())
        finally:
            torch.set_num_threads(before)
    assert _demo_kernel_env()[dev.THREADS_ENV] == str(torch.get_num_threads())


def test_the_pipeline_starts_its_kernels_with_the_given_environment_and_records_it(tmp_path, monkeypatch):
    import os

    import nbformat

    from maskgan.pipeline import run_pipeline
    d = tmp_path / "nbs"
    d.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset = "smoke"\nrun_dir = ""\n')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, pathlib\npathlib.Path(run_dir, 'seen.txt').write_text(os.environ.get('MKL_CBWR', 'unset'))\n")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, d / "00_env.ipynb")
    monkeypatch.delenv("MKL_CBWR", raising=False)
    run_pipeline("smoke", tmp_path / "run", notebook_dir=d, kernel_env={"MKL_CBWR": "AVX2"}, log=lambda s: None)
    assert (tmp_path / "run" / "seen.txt").read_text() == "AVX2"
    state = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert state["notebooks"]["00_env"]["kernel_env"] == {"MKL_CBWR": "AVX2"}
    assert "MKL_CBWR" not in os.environ  # this process's environment is left as it was


# --- the summary against the recorded runs ----------------------------------------------------------

VALUES = {"dmn/recon_psnr": 18.77, "dmn/edit_psnr": 18.63, "dmn/recon_miou": 0.234, "ebst/edit_psnr": 19.04}


def _metrics(values: dict) -> dict:
    """A metrics.json holding ``values`` where the demo writes them."""
    metrics: dict = {}
    for key, v in values.items():
        node = metrics
        *parents, leaf = HEADLINE[key][1]
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return metrics


def _state(threads: int, pinned: bool = True) -> dict:
    env = {dev.THREADS_ENV: str(threads), **(PINS if pinned else {})}
    return {"notebooks": {"03_dmn_stage1": {"status": "ok", "kernel_env": env},
                          "04_ebst": {"status": "ok", "kernel_env": env}}}


@pytest.fixture
def reference(tmp_path, monkeypatch):
    from maskgan import summary
    monkeypatch.setattr(summary, "cpu_model", lambda: "Test CPU")
    runs = [{"name": "the README run", "readme": True, "cpu": "Test CPU", "threads": 2, "pinned": True,
             "values": VALUES},
            {"name": "another run", "cpu": "Other CPU", "threads": 1, "pinned": False,
             "values": {k: v + 0.3 for k, v in VALUES.items()}}]
    path = tmp_path / "demo_cpu.json"
    path.write_text(json.dumps({"runs": runs}))
    return path


def test_the_headline_numbers_are_read_from_metrics_json():
    assert demo_values(_metrics(VALUES)) == VALUES


def test_a_run_with_the_settings_of_a_recorded_run_and_its_numbers_is_said_to_reproduce_it(reference, tmp_path):
    text = "\n".join(reproduction(Run(tmp_path), _metrics(VALUES), _state(2), reference))
    assert "reproduces the README run to the printed digit (4 numbers)" in text
    assert "every number lies in the band" in text


def test_the_same_settings_with_other_numbers_are_reported_as_unexpected(reference, tmp_path):
    moved = {**VALUES, "dmn/recon_psnr": 18.70}
    text = "\n".join(reproduction(Run(tmp_path), _metrics(moved), _state(2), reference))
    assert "differs from the README run although the settings match (dmn/recon_psnr)" in text


def test_other_settings_say_why_the_readme_numbers_are_not_expected_and_check_the_band(reference, tmp_path):
    inside = {k: v + 0.1 for k, v in VALUES.items()}
    text = "\n".join(reproduction(Run(tmp_path), _metrics(inside), _state(1), reference))
    assert "not expected to the bit (threads: 2 there, 1 here)" in text
    assert "every number lies in the band" in text
    outside = {**inside, "ebst/edit_psnr": 21.0}
    text = "\n".join(reproduction(Run(tmp_path), _metrics(outside), _state(1), reference))
    assert "1 number(s) outside the band (EBST edit PSNR vs truth dB)" in text


def test_a_run_recorded_before_the_arithmetic_changed_is_not_expected_to_the_digit(reference, tmp_path):
    runs = json.loads(reference.read_text())["runs"]
    runs[0]["bits_current"] = False  # same settings as _state(2), but recorded on older code
    reference.write_text(json.dumps({"runs": runs}))
    moved = {**VALUES, "dmn/recon_psnr": 18.80}  # other bits, inside the band
    text = "\n".join(reproduction(Run(tmp_path), _metrics(moved), _state(2), reference))
    assert "differs from" not in text and "reproduces" not in text
    assert "not expected to the bit" in text and "every number lies in the band" in text


def test_without_a_recorded_thread_count_the_stages_record_is_read(reference, tmp_path):
    """A run whose kernels got the user's MASKGAN_THREADS recorded no count of its own before."""
    state = _state(2)
    for nb in state["notebooks"].values():
        nb["kernel_env"] = {k: v for k, v in nb["kernel_env"].items() if k != dev.THREADS_ENV}
    for stage in ("vae", "dmn", "ebst"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "summary.json").write_text(json.dumps({"kernels": {"threads": 2}}))
    text = "\n".join(reproduction(Run(tmp_path), _metrics(VALUES), state, reference))
    assert "reproduces the README run" in text


def test_notebooks_run_under_different_settings_cannot_be_compared_bit_for_bit(reference, tmp_path):
    state = _state(2)
    state["notebooks"]["04_ebst"]["kernel_env"] = {dev.THREADS_ENV: "1", **PINS}
    text = "\n".join(reproduction(Run(tmp_path), _metrics(VALUES), state, reference))
    assert "different thread counts or kernel pins" in text and "reproduces" not in text


def test_the_recorded_runs_file_has_a_readme_run_with_every_setting():
    from maskgan.summary import REFERENCE_FILE
    runs = json.loads(REFERENCE_FILE.read_text())["runs"]
    assert sum(bool(r.get("readme")) for r in runs) == 1
    for r in runs:
        assert {"name", "cpu", "threads", "pinned", "source", "values"} <= set(r), r.get("name")
        assert set(r["values"]) <= set(HEADLINE), r["name"]
        assert r.get("bits_current", True) in (True, False), r["name"]
    current = [r for r in runs if r.get("bits_current", True)]
    assert len({(r["cpu"], r["threads"], r["pinned"]) for r in current}) == len(current), \
        "two current runs with the same settings: keep one, or say why they differ"

"""The kit installs and imports as promised (issue: foundation, section 1)."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in deps["dependencies"] + deps["optional-dependencies"]["dev"]:
        name, _, version = spec.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_runtime_dependencies_are_pinned_and_torch_is_2_13():
    pins = _pyproject_pins()
    assert pins["torch"] == "2.13.0"
    assert all(pins.values()), f"unpinned dependencies: {[k for k, v in pins.items() if not v]}"


def test_torchvision_is_only_an_optional_extra():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("torchvision") for d in deps["dependencies"])
    assert any(d.startswith("torchvision") for d in deps["optional-dependencies"]["vision"])


def test_environment_yml_pins_the_same_versions_as_pyproject():
    env_pins = dict(re.findall(r"^\s*-\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", (ROOT / "environment.yml").read_text(), re.M))
    env_pins = {k.lower(): v for k, v in env_pins.items()}
    pins = _pyproject_pins()
    assert set(pins) <= set(env_pins), f"missing from environment.yml: {sorted(set(pins) - set(env_pins))}"
    assert {k: env_pins[k] for k in pins} == pins


def test_every_module_imports_when_torchvision_cannot_be_imported():
    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['torchvision'] = None  # any 'import torchvision' now raises ImportError\n"
        "import maskgan\n"
        "names = [m.name for m in pkgutil.walk_packages(maskgan.__path__, 'maskgan.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 5


def test_no_module_level_torchvision_import_in_the_package():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "maskgan").rglob("*.py")
                 if re.search(r"^(import torchvision|from torchvision)", p.read_text(), re.M)]
    assert offenders == []


def test_ci_runs_make_test_and_the_makefile_has_demo_and_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_ci_reruns_the_numerics_sensitive_tests_on_avx2_kernels_and_one_thread():
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"NUMERICS=\((.*?)\)", ci, re.S).group(1)
    nodes = [w.strip('"') for w in block.split()]
    assert len(nodes) >= 5
    for node in nodes:  # every named test exists (a renamed test would silently leave CI)
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        assert not name or re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), node
    assert re.search(r"^MKL_ENABLE_INSTRUCTIONS=AVX2 .*\n.*pytest.*NUMERICS", ci, re.M)
    assert re.search(r"^OMP_NUM_THREADS=1 .*pytest.*NUMERICS", ci, re.M)


def test_readme_documents_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    first_code = readme.index("```")
    block = readme[first_code:readme.index("```", first_code + 3)]
    assert "make demo" in block and "make test" in block


def test_every_link_and_image_of_the_readme_and_docs_exists():
    """The README is a front page that links docs/; a moved or missing page is a broken promise."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 200, f"the README has {len(lines)} lines; move detail into docs/"
    assert readme.index("make app") < readme.index("make lab") < readme.index("| notebook |")
    assert "http://127.0.0.1:8866" in readme

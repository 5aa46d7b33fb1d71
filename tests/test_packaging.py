"""The install story: pyproject.toml, environment.yml, README and CI agree with each other."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = _pyproject()["project"]
    wanted = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {d for d in pip_section if not d.startswith("-e")}
    assert listed == wanted
    assert any(d.startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))


def test_torch_is_pinned_below_the_cuda_release():
    deps = _pyproject()["project"]["dependencies"]
    torch_dep = next(d for d in deps if d.startswith("torch"))
    assert re.search(r"<\s*2\.14", torch_dep), torch_dep
    assert not any(d.startswith("torchvision") for d in deps)


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands_that_ci_runs():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci, f"CI does not run the README command: {command}"


def test_console_script_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "segnas_lite", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("train", "evaluate", "predict", "demo", "search", "export", "models"):
        assert command in out
    assert _pyproject()["project"]["scripts"]["segnas"] == "segnas_lite.cli:main"

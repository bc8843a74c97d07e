"""The package: pyproject.toml's dependencies and console scripts, each
script's short --help, the usage-error format and the quiet start-up."""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
import pytest

import srdc_tf
import serving_testlib

REPO = serving_testlib.REPO
with open(os.path.join(REPO, "pyproject.toml"), "rb") as _file:
  PYPROJECT = tomllib.load(_file)["project"]
SCRIPTS = PYPROJECT["scripts"]
# Flags every binary lists first in its --help.
FIRST_FLAG = {"srdc-train": "--task", "srdc-evaluate": "--saved_model",
              "srdc-export": "--model_dir", "srdc-report": "--run_dirs",
              "srdc-predict": "--model", "srdc-cache": "--cache_dir"}


def _pins(name):
  with open(os.path.join(REPO, name)) as lines:
    return [Requirement(line.split("#")[0].strip()) for line in lines
            if line.strip() and not line.startswith(("#", "-r"))]


def test_every_pinned_requirement_is_a_dependency_in_range():
  ranges = {Requirement(text).name.lower(): Requirement(text)
            for text in PYPROJECT["dependencies"]
            + PYPROJECT["optional-dependencies"]["dev"]}
  pins = _pins("requirements.txt") + _pins("requirements-dev.txt")
  assert {pin.name.lower() for pin in pins} == set(ranges)
  for pin in pins:
    version = next(iter(pin.specifier)).version
    assert ranges[pin.name.lower()].specifier.contains(version), pin


def test_the_console_scripts_point_at_cli_mains():
  assert set(SCRIPTS) == set(FIRST_FLAG)
  for target in SCRIPTS.values():
    # Found without importing: the binaries' flags would clash in one
    # process (each binary runs in its own).
    module, function = target.split(":")
    spec = importlib.util.find_spec(module)
    with open(spec.origin) as f:
      tree = ast.parse(f.read())
    assert function in {node.name for node in tree.body
                        if isinstance(node, ast.FunctionDef)}, target


def _script(name, *args, env=None):
  """Runs a console script's entry point as the installed script would."""
  module, function = SCRIPTS[name].split(":")
  code = (f"import sys; sys.argv = [{name!r}, *sys.argv[1:]]; "
          f"from {module} import {function}; {function}()")
  environment = {key: value for key, value in os.environ.items()
                 if key != "TF_CPP_MIN_LOG_LEVEL"}
  return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**environment, **(env or {})})


@pytest.mark.parametrize("name", sorted(FIRST_FLAG))
def test_help_lists_the_binary_s_own_flags_first_and_short(name):
  result = _script(name, "--help")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  flag_lines = [line for line in lines if line.startswith("  --")]
  assert flag_lines[0].split()[0].split("=")[0] == FIRST_FLAG[name]
  # At most two lines a flag: the trainer has 60-odd flags.
  assert len(lines) < 2 * len(flag_lines) + 20, len(lines)
  assert not [line for line in flag_lines
              if line.split()[0].startswith(("--logtostderr", "--flagfile",
                                             "--verbosity"))]
  assert "--helpfull" in lines[-1]
  full = _script(name, "--helpfull")
  assert "absl.app:" in full.stdout and FIRST_FLAG[name] in full.stdout


@pytest.mark.parametrize("name, args, message", [
    ("srdc-predict", [], "error: missing required flag(s) --model, --input, "
     "--output"),
    ("srdc-predict", ["--model=m", "--input=i", "--output=o", "--top_k=0"],
     "error: flag --top_k=0: 0 is not a positive integer"),
    ("srdc-report", ["--run_dirs=runs/nowhere", "--output=/tmp/t"],
     "error: --run_dirs: no folder 'runs/nowhere'"),
    ("srdc-cache", ["--cache_dir=runs/nowhere"],
     "error: --cache_dir: no folder 'runs/nowhere'"),
    ("srdc-cache", ["--cache_dir=.", "--prune_unused_days=-1"],
     "error: --prune_unused_days must be >= 0, got -1.0"),
    ("srdc-export", ["--model_dir=/nonexistent", "--export_dir=/tmp/e"],
     "error: --model_dir='/nonexistent' is not a folder"),
    ("srdc-train", ["--source=synthetic:source", "--target=synthetic:target",
                    "--model_dir=/tmp/unused", "--bogus=1"],
     "error: Unknown command line flag 'bogus'"),
])
def test_a_usage_error_is_the_error_and_a_pointer_to_help(name, args,
                                                          message):
  result = _script(name, *args)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  # TensorFlow's start-up lines are hidden: the error is all there is.
  assert lines[0].startswith(message), result.stderr
  assert lines[-1] == f"(see {name} --help for the flags)"
  assert len(lines) <= 3, result.stderr


@pytest.mark.e2e
def test_pip_install_gives_working_console_scripts(tmp_path):
  """Installs a copy of the package (no dependencies: they come from this
  environment through a .pth file) into a new venv, then runs its
  scripts."""
  source = tmp_path / "source"
  source.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(REPO, name), source)
  shutil.copytree(os.path.join(REPO, "srdc_tf"), source / "srdc_tf",
                  ignore=shutil.ignore_patterns("__pycache__"))
  venv = tmp_path / "venv"
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
  site = subprocess.run(
      [str(venv / "bin" / "python"), "-c",
       "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
      capture_output=True, text=True, check=True).stdout.strip()
  parent_site = [path for path in sys.path if path.endswith("site-packages")]
  with open(os.path.join(site, "_parent_env.pth"), "w") as pth:
    pth.write("\n".join(parent_site) + "\n")
  install = subprocess.run(
      [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
       "--no-deps", "--no-build-isolation", str(source)],
      capture_output=True, text=True, timeout=600)
  assert install.returncode == 0, install.stderr[-3000:]
  outside = tmp_path / "elsewhere"  # Not the repository: the installed copy.
  outside.mkdir()
  for name in SCRIPTS:
    result = subprocess.run([str(venv / "bin" / name), "--help"],
                            cwd=outside, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, (name, result.stderr)
    assert FIRST_FLAG[name] in result.stdout
  version = subprocess.run(
      [str(venv / "bin" / "python"), "-c",
       "import srdc_tf; print(srdc_tf.__version__, srdc_tf.__file__)"],
      cwd=outside, capture_output=True, text=True, check=True).stdout.split()
  assert version[0] == srdc_tf.__version__
  assert version[1].startswith(str(venv))

"""Releases (issue 20): the wheel built from a fresh clone installs in a clean venv and validates the example.

The clone has no tags, as CI's may not: setuptools-scm must still give a
version. The wheel is built with `--no-isolation` (the build backend comes
from this venv, so nothing is downloaded) and installed with `--no-deps`
into a venv without system site packages; the runtime dependencies come
from this venv's site-packages, appended to the clean venv's path (some are in no local index,
and the network is not to be counted on), while the `reconcile` package,
its .sql files, its entry point and its version come only from the wheel.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("setuptools_scm") is None,
    reason="`build` or setuptools-scm is not installed: pip install -e '.[test]'",
)
def test_wheel_from_a_fresh_clone_installs_in_a_clean_venv_and_validates(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: setuptools-scm has no history to read")
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", "--no-tags", str(ROOT), str(clone)], cwd=tmp_path)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)], cwd=clone)
    [wheel] = list(dist.glob("reconcile-*.whl"))
    version = wheel.name.split("-")[1]
    assert version.startswith("0.") and version != "0.0.0", wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "reconciler/inspect/server.sql" in names and "reconciler/py.typed" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    # The dependencies from this venv, after the clean venv's own site-packages (a .pth line is
    # appended to sys.path), so the wheel's package and metadata are found first; the .pth files
    # of that directory (this checkout's editable install) are not read from there.
    [site] = list((venv / "lib").glob("python*/site-packages"))
    (site / "dependencies-from-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}", "HOME": str(tmp_path), "NO_COLOR": "1"}
    where = _run([str(python), "-c", "import reconciler; print(reconciler.__file__)"], cwd=tmp_path, env=env)
    assert where.startswith(str(venv)), where
    assert (
        _run([str(venv / "bin" / "reconcile"), "--version"], cwd=tmp_path, env=env)
        == f"reconcile {version}\n"
    )
    out = _run(
        [str(venv / "bin" / "reconcile"), "validate", "-d", str(clone / "desired-state")],
        cwd=tmp_path,
        env=env,
    )
    assert "valid" in out.lower(), out

"""`pip install ./python` works offline (in-tree build backend) and the installed package imports."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

from conftest import ROOT


def test_pip_install_offline(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-index", str(ROOT / "python")],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(py), "-c", "import feature_store, sys; print(feature_store.__file__, feature_store.__version__)"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(env_dir) in r.stdout and "0.3.0" in r.stdout  # the installed copy, not the checkout
    r = subprocess.run([str(env_dir / "bin" / "feature-store"), "--help"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "training-set" in r.stdout

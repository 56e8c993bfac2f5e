"""A minimal PEP 517 build backend: packs feature_store/ into a pure-Python wheel.

It needs nothing but the standard library, so `pip install ./python` works without network
access (pip's isolated build environment installs the empty `requires` list). Metadata is
read from pyproject.toml's [project] table (only the keys this project uses).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # pragma: no cover - older Pythons
    tomllib = None

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "feature_store"


def _project() -> dict:
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        if tomllib is not None:
            return tomllib.load(f)["project"]
        text = f.read().decode()
    # Tiny fallback parser for the keys below (strings and string lists on one line).
    import ast
    proj, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if "=" in line and not line.startswith("#"):
            k, v = (p.strip() for p in line.split("=", 1))
            if section == "project":
                proj[k] = ast.literal_eval(v)
            elif section == "project.scripts":
                proj.setdefault("scripts", {})[k.strip('"')] = ast.literal_eval(v)
    return proj


def _dist() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}"


def _metadata() -> str:
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}", f"Requires-Python: {p.get('requires-python', '>=3')}"]
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _entry_points() -> str:
    scripts = _project().get("scripts", {})
    if not scripts:
        return ""
    return "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())


def _dist_info_files() -> dict:
    return {
        "METADATA": _metadata(),
        "WHEEL": "Wheel-Version: 1.0\nGenerator: feature_store-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "entry_points.txt": _entry_points(),
        "top_level.txt": PACKAGE + "\n",
    }


def _package_files():
    root = os.path.join(HERE, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".typed")):
                full = os.path.join(dirpath, name)
                yield full, os.path.relpath(full, HERE).replace(os.sep, "/")


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: list) -> str:
    dist = _dist()
    name = f"{dist.replace('-', '-', 1)}-py3-none-any.whl"
    info = f"{dist}.dist-info"
    records = []
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        for fname, text in _dist_info_files().items():
            data = text.encode()
            z.writestr(f"{info}/{fname}", data)
            records.append(_record_line(f"{info}/{fname}", data))
        records.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return name


# -- PEP 517 hooks ---------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = f"{_dist()}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for fname, text in _dist_info_files().items():
        with open(os.path.join(metadata_directory, info, fname), "w") as f:
            f.write(text)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for full, arcname in _package_files():
        with open(full, "rb") as f:
            files.append((arcname, f.read()))
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth file puts the checkout's python/ directory on sys.path.
    return _write_wheel(wheel_directory, [(f"{PACKAGE}_editable.pth", (HERE + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    dist = _dist()
    name = f"{dist}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for rel in ["pyproject.toml", "README.md", "_build/backend.py"]:
            tar.add(os.path.join(HERE, rel), arcname=f"{dist}/{rel}")
        for full, arcname in _package_files():
            tar.add(full, arcname=f"{dist}/{arcname}")
        info = tarfile.TarInfo(f"{dist}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return name

"""Every ```python block of the repository's README (then of docs/*.md) runs, in order, in one namespace, against a
fresh database `quickstart` holding the bundled example; the ```yaml block that starts with
`# feature_repo.yaml` is written to that file first. A block that fails, fails this test."""

from __future__ import annotations

import os
import re
import sys
import traceback

import psycopg
import pytest

from conftest import ROOT, _base_dsn, dsn_for

README = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
BLOCKS = re.findall(r"^```(python|yaml)\n(.*?)^```", README, flags=re.S | re.M)


@pytest.fixture
def quickstart_db(monkeypatch, tmp_path):
    with psycopg.connect(_base_dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS quickstart WITH (FORCE)")
        admin.execute("CREATE DATABASE quickstart")
    with psycopg.connect(dsn_for("quickstart"), autocommit=True) as c:
        c.execute((ROOT / "scripts" / "example_data.sql").read_text())
        c.execute("CREATE EXTENSION feature_store")
    # The snippets connect with "dbname=quickstart": the rest comes from libpq's variables.
    info = psycopg.conninfo.conninfo_to_dict(_base_dsn())
    for k, env in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER")):
        if k in info:
            monkeypatch.setenv(env, str(info[k]))
    monkeypatch.chdir(tmp_path)
    yield
    with psycopg.connect(_base_dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE quickstart WITH (FORCE)")


def test_readme_python_blocks(quickstart_db):
    python = [code for lang, code in BLOCKS if lang == "python"]
    repo = [code for lang, code in BLOCKS if lang == "yaml" and code.startswith("# feature_repo.yaml")]
    assert len(python) >= 4 and len(repo) == 1
    with open("feature_repo.yaml", "w") as f:
        f.write(repo[0])
    namespace: dict = {}
    for i, code in enumerate(python):
        try:
            exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
        except AssertionError:
            # scripts/test.sh shows only the E lines: name the block and the line that failed
            tb = traceback.extract_tb(sys.exc_info()[2])[-1]
            raise AssertionError(f"python block {i + 1} of README.md/docs, line {tb.lineno}: {tb.line}") from None
    namespace["store"].close()

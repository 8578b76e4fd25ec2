"""tests/conftest.py's CI rule: a skipped ``required_in_ci`` test fails when CI is set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEST = '''
import pytest

@pytest.mark.required_in_ci
def test_needs_a_wheel():
    pytest.skip("the wheel is missing")

def test_optional():
    pytest.skip("optional")
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_required_skip_fails_only_in_ci(tmp_path, ci):
    shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text(TEST)
    env = {**os.environ, "CI": ci}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    if ci:
        assert r.returncode == 1, r.stdout
        assert "1 failed, 1 skipped" in r.stdout and "required in CI" in r.stdout and "the wheel is missing" in r.stdout
    else:
        assert r.returncode == 0, r.stdout
        assert "2 skipped" in r.stdout

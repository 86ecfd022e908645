"""A run killed while it writes leaves the previous outputs intact and no half-written file."""

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gis import pipeline


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def stages(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.staging-*"))


def start_and_kill(runfile: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run and send ``sig`` once it is writing its exports into the staging folder."""
    proc = subprocess.Popen([sys.executable, "-m", "gis.cli", "run", str(runfile), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any((s / "scorecard.json").exists() for s in stages(out)):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def previous_run(demo_run, tmp_path_factory):
    """A copy of the shared demo run's outputs (tests/conftest.py): the killed runs write here."""
    out = tmp_path_factory.mktemp("kill") / "out"
    shutil.copytree(demo_run[1], out)
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_keeps_previous_outputs(previous_run, demo_dir, sig):
    out = previous_run
    before = snapshot(out)
    result = start_and_kill(demo_dir / "run.toml", out, sig)
    assert result.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
    assert "Traceback" not in result.stderr
    assert snapshot(out) == before  # every previous file, byte for byte; nothing added
    assert not out.with_name(out.name + ".previous").exists()
    if sig == signal.SIGTERM:
        assert stages(out) == []  # cleaned up on the way out
    else:
        assert len(stages(out)) == 1  # a SIGKILL cannot be caught: the hidden staging folder stays
        pipeline._remove_stale_stages(out)  # … and the next run removes it
        assert stages(out) == []

"""Flame graphs of what the benchmark measured (``tollgate bench --profile``).

py-spy samples a running Python process from outside, without changing its code: each
profiled row gets one extra run of its load with py-spy attached to the server (the row's
own figures come from the runs before, unprofiled), and each invoice run is sampled in the
benchmark's own process. An SVG per row, to open in a browser: the widest towers are where
the time goes.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

#: Samples per second: enough for a 10 s run to show a 1 % function, little enough that
#: py-spy's reading of the process's memory stays out of what it shows.
RATE = 250


class ProfilerMissing(RuntimeError):
    """py-spy is not installed."""


def py_spy() -> str:
    """py-spy beside this Python (a virtualenv's bin/, activated or not), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerMissing("--profile needs py-spy: pip install -e '.[dev]' installs it")
    return found


def file_for(directory: Path, name: str) -> Path:
    """``Tollgate /v1/auth, warm near-cache`` -> ``tollgate-v1-auth-warm-near-cache.svg``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return directory / f"{slug}.svg"


@contextlib.contextmanager
def sampling(pid: int, output: Path, title: str) -> Iterator[None]:
    """Sample process ``pid`` while the block runs; the flame graph is written at its end.

    ``--nonblocking`` reads the process's stacks without stopping it, so the load it is
    under goes on at its own pace (a stopped process would answer less, and differently).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking",
        "--format", "flamegraph", "--output", str(output),
    ]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        try:
            _, errors = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, errors = recorder.communicate()
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile of {title!r}: {errors.decode()[-500:]}")

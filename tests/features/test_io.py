"""Atomic table writes: temp file then rename; a killed writer's temp file is cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from churnlens.errors import ChurnlensError
from churnlens.features.io import remove_stale_temps, write_frame


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_frame_leaves_only_the_target(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    write_frame(pd.DataFrame({"a": [1, 2]}), out)
    assert pd.read_csv(out)["a"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_a_killed_writers_temp_is_removed_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    stale = tmp_path / f".scores.parquet.{dead_pid()}.abc123.tmp"
    stale.write_bytes(b"half a parquet file")
    busy = tmp_path / f".scores.parquet.{os.getppid()}.def456.tmp"  # a live process's
    busy.write_bytes(b"being written")
    other = tmp_path / f".other.csv.{dead_pid()}.x.tmp"  # another target's: not ours to judge
    other.write_bytes(b"")
    write_frame(pd.DataFrame({"a": [1.0]}), out)
    assert not stale.exists() and busy.exists() and other.exists()
    assert pd.read_parquet(out)["a"].tolist() == [1.0]
    assert remove_stale_temps(out) == []


def test_sigkill_during_a_write_never_leaves_a_partial_target(tmp_path: Path) -> None:
    out = tmp_path / "big.csv"
    write_frame(pd.DataFrame({"a": [0]}), out)  # the previous, complete file
    code = (
        "import pandas as pd, sys\n"
        "from pathlib import Path\n"
        "from churnlens.features.io import write_frame\n"
        "df = pd.DataFrame({'a': range(3_000_000), 'b': ['x' * 20] * 3_000_000})\n"
        "print('writing', flush=True)\n"
        "write_frame(df, Path(sys.argv[1]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"writing"
    for _ in range(200):  # wait until its temp file exists, then kill it mid-write
        if list(tmp_path.glob(".big.csv.*.tmp")):
            break
        proc.poll()
        assert proc.returncode is None, "the writer finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert pd.read_csv(out)["a"].tolist() == [0]  # the old file, whole
    assert list(tmp_path.glob(".big.csv.*.tmp"))  # the killed writer's leftover...
    write_frame(pd.DataFrame({"a": [1]}), out)
    assert not list(tmp_path.glob(".big.csv.*.tmp"))  # ...removed by the next write


def test_bad_output_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChurnlensError, match="output must end in"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path / "x.txt")

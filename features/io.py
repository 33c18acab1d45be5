"""Writing frames to files atomically: a reader never sees a half-written output."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import ChurnlensError

OUTPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def check_output_path(path: Path) -> None:
    """Fail early, before any work, when ``path`` cannot be written as a table."""
    if not any(path.name.endswith(s) for s in OUTPUT_SUFFIXES):
        raise ChurnlensError(
            f"{path}: output must end in {', '.join(OUTPUT_SUFFIXES)} (got {path.suffix or 'none'})"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ChurnlensError(f"{path}: {parent} is not a directory")


def write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV or Parquet by suffix, via a temp file renamed into place."""
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.name.endswith(".parquet"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(
                tmp,
                index=False,
                compression="gzip" if path.name.endswith(".gz") else None,
                date_format="%Y-%m-%d",
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

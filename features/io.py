"""Writing frames to files atomically: a reader never sees a half-written output.

CSV outputs are opened in spreadsheets: a text cell starting with ``= + - @`` (or a tab / carriage
return) gets a leading ``'`` so it is shown, never run as a formula (OWASP "CSV injection").
Parquet keeps the values as they are.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import ChurnlensError

OUTPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell a spreadsheet would run as a formula prefixed by ``'``."""
    out = df
    for col in df.columns:
        s = df[col]
        if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
            continue
        try:
            values = pd.unique(s.dropna())
        except TypeError:  # unhashable cells (lists, dicts) are not text
            continue
        bad = [v for v in values if isinstance(v, str) and v.startswith(FORMULA_START)]
        if bad:
            hit = s.isin(bad)
            out = out.assign(**{col: s.astype(object).where(~hit, "'" + s[hit].astype(str))})
    return out


def check_output_path(path: Path) -> None:
    """Fail early, before any work, when ``path`` cannot be written as a table."""
    if not any(path.name.endswith(s) for s in OUTPUT_SUFFIXES):
        raise ChurnlensError(
            f"{path}: output must end in {', '.join(OUTPUT_SUFFIXES)} (got {path.suffix or 'none'})"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ChurnlensError(f"{path}: {parent} is not a directory")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temp files of ``path`` left by writers that were killed (their process is gone).

    Temp files are named ``.<name>.<pid>.<random>.tmp``; one whose process is alive is another
    writer's, and is left alone.
    """
    removed = []
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV or Parquet by suffix, via a temp file renamed into place.

    A writer killed before the rename leaves only its temp file, never a partial ``path``; the
    next write to ``path`` removes it.
    """
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        if path.name.endswith(".parquet"):
            df.to_parquet(tmp, index=False)
        else:
            neutralise_formulas(df).to_csv(
                tmp,
                index=False,
                compression="gzip" if path.name.endswith(".gz") else None,
                date_format="%Y-%m-%d",
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

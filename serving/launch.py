"""Run the prediction API as a local ``bentoml serve`` process (tests, benchmarks, scripts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SERVICE = "churnlens.serving.service:ChurnService"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(
    env: dict[str, str],
    log_path: Path,
    *,
    ready_seconds: float = 90.0,
    cwd: Path | None = None,
    target: str = SERVICE,
) -> Iterator[str]:
    """``bentoml serve TARGET`` on 127.0.0.1 in a subprocess; yields its URL once /readyz is 200.

    ``target`` is the service from source (default) or a built bento's tag (``churnlens:abc``).
    The process is always stopped on exit (terminate, then kill). Raises ``RuntimeError`` with
    the end of the server log when it exits early or is not ready in ``ready_seconds``.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli = Path(sys.executable).with_name("bentoml")
    cmd = [str(cli), "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
        try:
            deadline = time.monotonic() + ready_seconds
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"bentoml serve exited {proc.returncode}:\n{_tail(log_path)}"
                    )
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"/readyz not 200 within {ready_seconds:.0f} s:\n{_tail(log_path)}"
                    )
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _tail(path: Path, n: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-n:]

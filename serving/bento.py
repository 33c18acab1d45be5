"""Package the prediction API as a bento with the model inside (``churnlens bento``).

Building: the model (``models:/churnlens@champion`` by default, as ``churnlens serve`` would load
it) is copied into the local BentoML model store as ``churnlens-model:<version>`` (``v3-<sha>``
for registered version 3, ``dir-<sha>`` for a package directory; the sha is the package's
content), the ``churnlens`` wheel is built into ``dist/`` and the locked dependencies are exported
from ``uv.lock``; then the bento is built from ``bentofile.yaml`` with its ``models`` entry pinned
to that exact tag. ``BENTOML_HOME`` chooses the stores, as for ``bentoml`` itself.

Serving: :func:`packed_model` finds the model a bento was built with, so a built service reads it
from the BentoML model store and needs no MLflow server; serving from source (no bento) falls back
to ``CHURNLENS_MODEL_URI`` / the MLflow champion.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ChurnlensError
from ..model import ChurnModel

log = logging.getLogger(__name__)

BENTO_MODEL = "churnlens-model"  # name in the BentoML model store
DIST = "dist"
REQUIREMENTS = f"{DIST}/bento-requirements.txt"  # bentofile python.requirements_txt
PINNED_BENTOFILE = f"{DIST}/bentofile.yaml"  # bentofile.yaml with the model tag pinned
UV_ENV = "CHURNLENS_UV"
REGISTRY_LABEL = re.compile(r"^(?P<name>.+) v(?P<version>\d+)$")  # training.registry.load_model


# ------------------------------------------------------------------------------------ serving
def packed_model_tag(bento: Any) -> str | None:
    """Tag of the churnlens model a bento was built with; None without a bento or that model."""
    if bento is None:
        return None
    tags = sorted({str(m.tag) for m in bento.info.all_models if m.tag.name == BENTO_MODEL})
    if len(tags) > 1:
        raise ChurnlensError(f"bento {bento.tag}: several {BENTO_MODEL} models: {tags}")
    return tags[0] if tags else None


def packed_model(bento: Any) -> tuple[ChurnModel, str] | None:
    """The model packed in ``bento`` and its version label, or None (serving from source).

    ``bento`` is the service's ``bento`` attribute, which BentoML sets when it serves a built
    bento. The model comes from the BentoML model store; the label is the one the model had where
    it came from (``churnlens v3``), so ``GET /model`` says the same as when served from MLflow.
    """
    import bentoml

    tag = packed_model_tag(bento)
    if tag is None:
        return None
    stored = bentoml.models.get(tag)
    model = ChurnModel.load(Path(stored.path))
    label = stored.info.metadata.get("model_version")
    return model, str(label) if label else tag


# ----------------------------------------------------------------------------------- building
@dataclass(frozen=True)
class BuiltBento:
    """What ``churnlens bento`` made."""

    bento_tag: str
    model_tag: str
    model_version: str
    wheel: Path
    model_imported: bool


def project_root(project: Path | None = None) -> Path:
    """The source checkout to build from: ``project``, else the package's own directory.

    The repository root is the ``churnlens`` package, so an editable install points at it.
    """
    root = (project or Path(__file__).resolve().parent.parent).resolve()
    needed = ("pyproject.toml", "uv.lock", "bentofile.yaml")
    missing = [f for f in needed if not (root / f).is_file()]
    if missing:
        raise ChurnlensError(
            f"{root}: not a churnlens source checkout (no {', '.join(missing)}); "
            "run `churnlens bento --project DIR` with the repository root"
        )
    return root


def find_uv(root: Path, uv: str | None = None) -> str:
    """The ``uv`` executable: ``--uv``, ``$CHURNLENS_UV``, ``uv`` on PATH or ``.tools/bin/uv``."""
    for candidate in (uv, os.environ.get(UV_ENV), shutil.which("uv"), root / ".tools/bin/uv"):
        if candidate and shutil.which(str(candidate)):
            return str(candidate)
    raise ChurnlensError(
        f"uv not found (tried --uv, ${UV_ENV}, PATH and {root / '.tools/bin/uv'}); "
        "`make setup` installs it"
    )


def wheel_name(root: Path) -> str:
    """File name of the wheel ``uv build`` makes from ``pyproject.toml``."""
    project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]
    name = re.sub(r"[-_.]+", "_", str(project["name"])).lower()
    return f"{name}-{project['version']}-py3-none-any.whl"


def check_bentofile(root: Path) -> dict[str, Any]:
    """``bentofile.yaml``, checked against what :func:`build_bento` produces."""
    path = root / "bentofile.yaml"
    doc = yaml.safe_load(path.read_text("utf-8"))
    python = doc.get("python") or {}
    want_wheel = f"{DIST}/{wheel_name(root)}"
    problems = []
    if python.get("wheels") != [want_wheel]:
        problems.append(f"python.wheels must be [{want_wheel!r}] (pyproject's version)")
    if python.get("requirements_txt") != REQUIREMENTS:
        problems.append(f"python.requirements_txt must be {REQUIREMENTS!r}")
    if [m.get("tag") if isinstance(m, dict) else m for m in doc.get("models") or []] != [
        f"{BENTO_MODEL}:latest"
    ]:
        problems.append(f"models must be [{BENTO_MODEL}:latest]")
    if problems:
        raise ChurnlensError(f"{path}: " + "; ".join(problems))
    return dict(doc)


def package_digest(model: ChurnModel) -> str:
    """sha256 of the model package's files (what :meth:`ChurnModel.save` writes)."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp))
        h = hashlib.sha256()
        for name in (ChurnModel.BOOSTER_FILE, ChurnModel.META_FILE):
            h.update(name.encode() + b"\0" + (Path(tmp) / name).read_bytes())
        return h.hexdigest()


def model_metadata(model: ChurnModel, label: str, uri: str) -> dict[str, Any]:
    """BentoML model metadata: where the model came from, when it was trained, test metrics."""
    from .service import model_info

    info = model_info(model, label)
    metrics = {
        who: {k: v for k, v in m.items() if v is not None} for who, m in info.metrics.items()
    }
    meta: dict[str, Any] = {
        "model_version": label,
        "model_uri": uri,
        "metrics": metrics,
        "training_window": info.training_window,
        "features": len(info.features),
    }
    if info.trained_at:
        meta["trained_at"] = str(info.trained_at)
    return meta


def import_model(uri: str | None, name: str, say: Callable[[str], None]) -> tuple[str, str, bool]:
    """Copy the model at ``uri`` (default: the champion) into the BentoML model store.

    Returns the tag, the model's version label and whether it was new (an identical package
    already in the store is reused).
    """
    import bentoml
    from bentoml.exceptions import NotFound

    from ..training.registry import CHAMPION
    from .service import load_served_model

    ref = uri or f"models:/{name}@{CHAMPION}"
    model, label = load_served_model(uri, name)
    digest = package_digest(model)
    match = REGISTRY_LABEL.match(label) if ref.startswith("models:/") else None
    labels = {"project": "churnlens", "sha256": digest}
    if match:
        version = f"v{match['version']}-{digest[:12]}"
        ref = f"models:/{match['name']}/{match['version']}"
        labels |= {"registered_model": match["name"], "registry_version": match["version"]}
    else:
        version = f"dir-{digest[:12]}"
    tag = f"{BENTO_MODEL}:{version}"
    say(f"model {label} ({ref}) -> BentoML model {tag}")
    try:
        bentoml.models.get(tag)
        return tag, label, False
    except NotFound:
        pass
    with bentoml.models.create(
        tag, labels=labels, metadata=model_metadata(model, label, ref)
    ) as stored:
        model.save(Path(stored.path))
    return tag, label, True


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout)[-3000:]
        raise ChurnlensError(f"{what} failed ({' '.join(cmd)}):\n{tail}")


def build_wheel(root: Path, uv: str) -> Path:
    """``uv build`` (sdist, then the wheel from it) and the wheel copied into ``dist/``.

    Building the wheel from the sdist, not the work tree, keeps setuptools' ``build/`` scratch
    directory (which can hold files since deleted) out of the wheel.
    """
    dist = root / DIST
    dist.mkdir(exist_ok=True)
    name = wheel_name(root)
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [uv, "build", "--out-dir", tmp, "--python", sys.executable, str(root)],
            "building the churnlens wheel",
            root,
        )
        built = Path(tmp) / name
        if not built.is_file():
            found = ", ".join(p.name for p in Path(tmp).iterdir())
            raise ChurnlensError(f"uv build wrote {found or 'nothing'}, not {name}")
        wheel = dist / name
        replace_into(built, wheel)
    return wheel


def replace_into(src: Path, dst: Path) -> None:
    """Copy ``src`` over ``dst`` atomically (a concurrent build never reads half a file)."""
    part = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    shutil.copyfile(src, part)
    os.replace(part, dst)


def export_requirements(root: Path, uv: str) -> Path:
    """The locked runtime dependencies (no dev group, no churnlens itself) as requirements."""
    out = root / REQUIREMENTS
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "requirements.txt"
        _run(
            [
                uv,
                "export",
                "--frozen",
                "--no-dev",
                "--no-hashes",
                "--no-emit-project",
                "--no-header",
                "--no-annotate",
                "--project",
                str(root),
                "--output-file",
                str(exported),
            ],
            "exporting uv.lock",
            root,
        )
        replace_into(exported, out)
    return out


def build_bento(
    model_uri: str | None,
    model_name: str,
    *,
    project: Path | None = None,
    uv: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BuiltBento:
    """Import the model, build the wheel, export the lock and build the bento (see module doc)."""
    import bentoml

    say = progress or (lambda msg: log.info("%s", msg))
    root = project_root(project)
    doc = check_bentofile(root)
    uv_exe = find_uv(root, uv)
    model_tag, label, imported = import_model(model_uri, model_name, say)
    say(f"wheel: uv build -> {DIST}/{wheel_name(root)}")
    wheel = build_wheel(root, uv_exe)
    say(f"dependencies: uv export (uv.lock) -> {REQUIREMENTS}")
    export_requirements(root, uv_exe)
    doc["models"] = [{"tag": model_tag}]
    doc["labels"] = {**(doc.get("labels") or {}), "model": model_tag}
    pinned = root / PINNED_BENTOFILE
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bentofile.yaml").write_text(
            "# Written by `churnlens bento`: bentofile.yaml with the model tag pinned.\n"
            + yaml.safe_dump(doc, sort_keys=False),
            "utf-8",
        )
        replace_into(Path(tmp) / "bentofile.yaml", pinned)
    say(f"bento: build from bentofile.yaml with model {model_tag}")
    with contextlib.chdir(root):  # BentoML reads the bentofile's paths only under the cwd
        bento = bentoml.bentos.build_bentofile(str(pinned), build_ctx=str(root))
    return BuiltBento(str(bento.tag), model_tag, label, wheel, imported)

"""The lock audit's judgement of a pip-audit report (.ci/audit.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPORT = {
    "dependencies": [
        {"name": "ok", "version": "1.0", "vulns": []},
        {
            "name": "bad",
            "version": "2.0",
            "vulns": [
                {"id": "PYSEC-1", "aliases": ["CVE-1"], "fix_versions": ["2.1"]},
                {"id": "GHSA-2", "aliases": [], "fix_versions": []},
            ],
        },
        {"name": "gone", "skip_reason": "Dependency not found on PyPI"},
    ]
}


def test_findings_unless_explained(tmp_path: Path) -> None:
    audit = audit_module()
    findings, audited, skipped = audit.summarise(REPORT, {})
    assert (audited, skipped) == (2, 1)
    assert findings == [
        "bad==2.0: PYSEC-1 (fixed in 2.1)",
        "bad==2.0: GHSA-2 (fixed in no fixed version)",
    ]
    allow = tmp_path / "allow.txt"
    allow.write_text("# comment\nCVE-1 only reachable through a CLI we never call\n")
    findings, _, _ = audit.summarise(REPORT, audit.allowed(allow))
    assert findings == ["bad==2.0: GHSA-2 (fixed in no fixed version)"]


def test_an_allowed_id_needs_a_reason(tmp_path: Path) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("GHSA-2\n")
    with pytest.raises(SystemExit, match="GHSA-2: give the reason"):
        audit_module().allowed(allow)


def test_the_committed_allow_file_parses() -> None:
    assert isinstance(audit_module().allowed(), dict)

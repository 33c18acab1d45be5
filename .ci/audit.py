"""Audit every pin in uv.lock for known vulnerabilities with pip-audit (``make audit``).

The lock is exported (all extras and groups, no hashes, not the project itself) and each pin is
looked up in the PyPI advisory data. Exit 1 when a pin has a known vulnerability that is not
explained in ``.ci/audit-allow.txt`` (one ``ID  reason`` per line). When the advisory service cannot
be reached (a closed network: pip-audit then skips every pin), the audit says so loudly and exits 0,
or 1 with ``--strict``: an unreachable service is not a finding about the pins.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOW = ROOT / ".ci" / "audit-allow.txt"


def allowed(path: Path = ALLOW) -> dict[str, str]:
    """Advisory id -> why it does not apply (or is accepted), from the allow file."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                vid, _, reason = line.partition(" ")
                if not reason.strip():
                    raise SystemExit(f"{path}: {vid}: give the reason it is accepted")
                out[vid] = reason.strip()
    return out


def summarise(report: dict[str, object], allow: dict[str, str]) -> tuple[list[str], int, int]:
    """(unexplained findings, pins audited, pins skipped) from pip-audit's JSON report."""
    findings: list[str] = []
    audited = skipped = 0
    deps = report.get("dependencies")
    for dep in deps if isinstance(deps, list) else []:
        if "skip_reason" in dep:
            skipped += 1
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            if ids & allow.keys():
                continue
            fix = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            findings.append(f"{dep['name']}=={dep['version']}: {vuln['id']} (fixed in {fix})")
    return findings, audited, skipped


def main() -> int:
    """Export the lock, run pip-audit, judge its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uv", default=str(ROOT / ".tools" / "bin" / "uv"))
    parser.add_argument("--strict", action="store_true", help="fail when nothing could be audited")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        export = [args.uv, "export", "--frozen", "--no-hashes", "--no-emit-project"]
        export += ["--all-extras", "--all-groups", "--quiet", "--output-file", str(req)]
        subprocess.run(export, check=True, cwd=ROOT)
        pins = sum(1 for line in req.read_text().splitlines() if "==" in line)
        audit = [sys.executable, "-m", "pip_audit", "-r", str(req), "--no-deps", "--disable-pip"]
        audit += ["--format", "json", "--progress-spinner", "off", "--timeout", "20"]
        proc = subprocess.run(audit, capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    findings, audited, skipped = summarise(report, allowed())
    if findings:
        print(f"audit: {len(findings)} known vulnerabilities in uv.lock not explained in {ALLOW}:")
        print("\n".join(f"  {f}" for f in findings))
        return 1
    if audited == 0:
        deps = report.get("dependencies") if isinstance(report, dict) else None
        reasons = [d["skip_reason"] for d in deps or [] if "skip_reason" in d]
        why = reasons[:1] or (proc.stderr.strip().splitlines() or ["no report"])[-1:]
        print(
            f"audit: NOT AUDITED. The advisory service could not be reached from this machine, so "
            f"none of the {pins} pins in uv.lock was checked ({why[0]}). Run `make audit` where "
            f"pypi.org's JSON API is reachable."
        )
        return 1 if args.strict else 0
    print(f"audit: {audited} pins checked, {skipped} skipped, no unexplained known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())

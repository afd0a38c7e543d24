"""What ships, and how the source stays readable: shopsync's wheel holds the product, its SQL and its
license and no platform sandbox; the sandboxes are their own distribution; no module runs past ~400 lines without saying
why; connectors reach shared web helpers without importing the app."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LONG = 400


def build_wheel(project: Path, out: Path) -> zipfile.ZipFile:
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)], cwd=project,
                   check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_ships_the_product_and_its_sql_but_no_sandbox(tmp_path: Path) -> None:
    wheel = build_wheel(ROOT, tmp_path / "shopsync")
    names = wheel.namelist()
    # the license pyproject names, in full, beside the metadata
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    text = wheel.read(license_file).decode()
    assert text == (ROOT / "LICENSE").read_text() and "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert "License: Apache-2.0" in wheel.read(metadata).decode().splitlines()
    assert not [n for n in names if n.startswith("sandbox")], "a sandbox module is in shopsync's wheel"
    assert "worker/_sql/migrations/0009_catalog_policies_job_kinds.sql" in names
    assert "worker/_sql/functions/00_catalog.sql" in names
    assert "worker/rpc/queue.py" in names and "worker/connectors/contract.py" in names
    assert "worker/queries/merge_stage.sql" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_the_sandboxes_are_their_own_distribution(tmp_path: Path) -> None:
    names = build_wheel(ROOT / "sandboxes", tmp_path / "sandboxes").namelist()
    packages = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert packages == {"sandbox"}
    assert "sandbox/shopify/__init__.py" in names and "sandbox/woocommerce/rest/router.py" in names


def test_long_modules_say_why() -> None:
    unexplained = []
    for base in (ROOT / "worker", ROOT / "sandboxes" / "sandbox"):
        for path in sorted(base.rglob("*.py")):
            lines = path.read_text().splitlines()
            if len(lines) > LONG and not any(line.startswith("# long module:") for line in lines[:30]):
                unexplained.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not unexplained, "modules over 400 lines without a '# long module: <why>' line near the top: " \
        + ", ".join(unexplained)


def test_connectors_do_not_import_the_web_app() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "worker" / "connectors").rglob("*.py"))
                 if "worker.web.app" in p.read_text()]
    assert not offenders, offenders

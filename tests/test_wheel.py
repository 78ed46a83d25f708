"""The built wheel is the whole app: built from a copy of the sources, installed (not editable)
into a fresh virtualenv outside the checkout, it seeds the demo and serves the login page and
the label page with its CSS and JavaScript, all from the installed package.

The new virtualenv reaches the test environment's dependencies through a ``.pth`` line (its
own site-packages comes first, so ``app`` is the wheel's), and the wheel is built without
build isolation: nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import __version__
from tests.conftest import ROOT
from tests.helpers.live import free_port, wait_until_ready
from tests.helpers.pages import login

SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "app", "training")
SOURCES += ("templates", "static", "migrations")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
DEMO_LABELER = ("alice", "alice-demo-pass")


@pytest.fixture(scope="module")
def install() -> Iterator[tuple[Path, Path, Path]]:
    """(the wheel, the virtualenv's bin folder, a work folder): outside the checkout."""
    work = Path(tempfile.mkdtemp(prefix="prefloop-wheel-"))
    try:
        src = work / "src"
        src.mkdir()
        for name in SOURCES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, src / name, ignore=IGNORED)
            else:
                shutil.copy2(ROOT / name, src / name)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
        build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist")]
        _run([*build, str(src)], cwd=work)
        wheel = next((work / "dist").glob("prefloop-*.whl"))
        _run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")], cwd=work)
        site = Path(_run([str(work / "venv/bin/python"), "-c", _PURELIB], cwd=work).strip())
        (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        target = ["--python", str(work / "venv/bin/python")]  # its scripts run the new venv
        _run([*pip, *target, "install", "--no-deps", str(wheel)], cwd=work)
        shutil.rmtree(src)  # the installed app must not need the sources
        yield wheel, work / "venv" / "bin", work
    finally:
        shutil.rmtree(work, ignore_errors=True)


_PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


def _env(**extra: str) -> dict[str, str]:
    """The environment without the checkout on PYTHONPATH (the tests run with it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    return {**env, "LOG_LEVEL": "warning", **extra}


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_carries_every_runtime_file(install):
    wheel, _, _ = install
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "static", "migrations"):
        expected = {
            f"app/resources/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert expected and expected <= names, sorted(expected - names)
    demo = {f"app/demo/{p.name}" for p in (ROOT / "app" / "demo").iterdir() if p.is_file()}
    assert demo and demo <= names, sorted(demo - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(f"prefloop-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata


def _resources_of(bin_dir: Path, work: Path) -> str:
    code = "from app.resources import resource_dir as r; print(r('templates'), r('migrations'))"
    return _run([str(bin_dir / "python"), "-c", code], cwd=work)


@pytest.mark.timeout(600)
def test_installed_wheel_seeds_the_demo_and_serves_pages_and_assets(install, databases):
    _, bin_dir, work = install
    assert _resources_of(bin_dir, work).count(str(work / "venv")) == 2
    assert _run([str(bin_dir / "prefloop"), "--version"], work).strip() == f"prefloop {__version__}"
    env = _env(DATABASE_URL=databases.new(), DATA_DIR=str(work / "data"))
    seeded = _run([str(bin_dir / "prefloop"), "demo", "--no-serve"], work, env)
    project_id = re.search(r"Demo project #(\d+)", seeded).group(1)
    port = free_port()
    serve = [str(bin_dir / "prefloop"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    url, log = f"http://127.0.0.1:{port}", work / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*serve, "--workers", "1"], cwd=work, env=env, stdout=out, stderr=out
        )
    try:
        wait_until_ready(server, url, log)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert login(client, *DEMO_LABELER).status_code == 303
            page = client.get(f"/projects/{project_id}/label")
            assert page.status_code == 200, page.text[:500]
            assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
            assert {"/static/css/label.css", "/static/js/label.js"} <= set(assets), assets
            for asset in assets:
                answer = client.get(asset)
                assert answer.status_code == 200 and answer.content, asset
    finally:
        server.terminate()
        server.wait(timeout=30)

"""Vendored front-end files are the pinned ones, and pages never load from a CDN."""

from __future__ import annotations

import hashlib
import re

from tests.conftest import ROOT

VENDOR = ROOT / "static" / "vendor"


def test_vendored_files_match_their_pinned_hashes():
    table = (VENDOR / "VERSIONS.md").read_text()
    rows = re.findall(r"^\| (\S+\.js) \|.*\| ([0-9a-f]{64}) \|$", table, flags=re.M)
    assert len(rows) == 3
    for name, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_templates_load_scripts_only_from_static():
    for template in (ROOT / "templates").rglob("*.html"):
        for src in re.findall(r'<script[^>]+src="([^"]+)"', template.read_text()):
            assert src.startswith("/static/"), (template.name, src)

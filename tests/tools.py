"""Outside tools some tests need (Chromium, pdftoppm, axe-core). Outside CI a
missing tool skips the test with how to install it; in CI it fails the test."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def require(found: bool, what: str, how: str) -> None:
    if found:
        return
    message = f"{what} is missing: {how}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run these tests)")
    pytest.skip(message)


def require_command(name: str, debian_package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"`{name}`", f"apt-get install {debian_package}")
    return path


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "Chromium", "apt-get install chromium (or set CHROMIUM=/path/to/chrome)")
    return path


def axe_script() -> str:
    path = PROJECT / "node_modules" / "axe-core" / "axe.min.js"
    require(path.exists(), "axe-core", "npm ci (needs Node.js and npm)")
    return path.read_text()

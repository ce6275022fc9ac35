"""UI fixtures: (the demo run and real `portrait serve` are tests/conftest.py's) Debian's Chromium
driven by Playwright (never a browser download), and the screenshot folder tests/artifacts/ui."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def ensure_chromium() -> Path:
    """Debian's chromium; installed with apt-get when missing and we are root, else the tests skip."""
    if CHROMIUM.is_file():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get); "
            "run `make browser` as root, or `apt-get install -y chromium chromium-driver`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium", "chromium-driver"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium (fresh profile, downloads allowed) shared by the browser tests."""
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(executable),
            args=CHROMIUM_FLAGS,
            headless=True,
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context, server) -> Iterator[object]:
    """A new tab at desktop width sending the session's page key; closed after the test."""
    tab = browser_context.new_page()
    tab.set_extra_http_headers(server.headers("pages"))
    tab.set_viewport_size({"width": 1280, "height": 900})
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def shoot(page, artifacts: Path):
    """shoot(name): full-page screenshots of the current page at desktop and phone widths."""

    def take(name: str) -> list[Path]:
        saved = []
        for label, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            path = artifacts / f"{name}-{label}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
        page.set_viewport_size({"width": 1280, "height": 900})
        return saved

    return take

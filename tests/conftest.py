"""Shared fixtures: one torch thread, float64 on request, and a headless system Chromium.

Playwright's own browser download cannot work on the course machines (no internet), so the
tests launch the system's Chromium (Debian: ``apt-get install chromium``; ``make test`` installs
it when it can). Without one the browser tests skip with the reason, except under CI
(``CI=true``), where a missing browser is a failure: CI must prove the course works in a browser.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FAILURES = ROOT / "build" / "browser-failures"

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# A closed network: every background connection Chromium tries is refused and slows it down.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The unit tests run tiny tensors: a second intra-op thread only adds synchronisation,
    and on a busy machine the two threads wait on each other (seen: 10x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def float64():
    """Float64 as the default dtype for a test that compares numbers; restored afterwards so it
    never leaks into other test files. Modules opt in with ``pytestmark``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_chromium() -> str | None:
    """``$NSDE_CHROMIUM`` if set, else the first Chromium/Chrome on ``PATH``."""
    explicit = os.environ.get("NSDE_CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def no_browser(reason: str):
    """Skip on a user's machine; fail under CI."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run on CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (Playwright ``Browser``); each launch gets a fresh, temporary profile."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        no_browser("the Python package 'playwright' is not installed (pip install -e '.[dev]')")
    executable = find_chromium()
    if executable is None:
        no_browser("no Chromium found (looked for $NSDE_CHROMIUM, "
                   f"{', '.join(CHROMIUM_NAMES)}); install it with `apt-get install chromium` "
                   "or point NSDE_CHROMIUM at a Chrome/Chromium binary")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                                 args=CHROMIUM_ARGS)
        except PlaywrightError as err:
            no_browser(f"Chromium at {executable} does not start: {str(err).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def _save_failure(name: str, pictures: dict[str, bytes | None], texts: dict[str, str]) -> Path:
    FAILURES.mkdir(parents=True, exist_ok=True)
    for label, png in pictures.items():
        if png:
            (FAILURES / f"{name}-{label}.png").write_bytes(png)
    for label, text in texts.items():
        (FAILURES / f"{name}-{label}.txt").write_text(text, encoding="utf-8")
    return FAILURES


@pytest.fixture
def save_failure():
    """``save_failure(name, {label: png}, {label: text})`` writes a failed browser test's
    screenshots and logs under ``build/browser-failures/`` and returns that folder."""
    return _save_failure

"""Headless Chromium for files out: an HTML file printed to PDF, or its first page as PNG.

Playwright is optional (a test extra, and what a deployment adds to print PDFs); it is imported
only when a browser is started, and its absence is :class:`PdfUnavailable` with the reason, not
an ImportError. The browser loads ``file:`` URLs only — nothing from the network. The launch
flags and the places Chromium is looked for are defined here once; the benches use them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ARGS", "CHROMIUM_PATHS", "PdfUnavailable", "chromium_path", "html_to_pdf",
           "screenshot_first_page"]

# Headless in a container as root: no sandbox, no GPU, no background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Debian's package first (what the command hall installs), then other distributions' names.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


class PdfUnavailable(RuntimeError):
    """No PDF: Playwright or Chromium is missing or did not start (the message says which)."""


def chromium_path() -> str | None:
    for candidate in CHROMIUM_PATHS:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Browser:
    """Headless Chromium via Playwright that loads file: URLs only (nothing from the network)."""

    def __enter__(self) -> Any:
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise PdfUnavailable("Playwright is not installed (pip install playwright)") from None
        executable = chromium_path()
        if executable is None:
            raise PdfUnavailable("Chromium not found (looked for " + ", ".join(CHROMIUM_PATHS) + ")")
        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as exc:
            self._pw.stop()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PdfUnavailable(f"Chromium at {executable} did not start: {first}") from None
        return self.browser

    def __exit__(self, *exc: object) -> None:
        self.browser.close()
        self._pw.stop()


def _open(browser: Any, html_path: Path, **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(html_path.resolve().as_uri(), wait_until="load")
    return page


def html_to_pdf(html_path: Path, pdf_path: Path, *, browser: Any = None) -> Path:
    """Print the HTML to an A4 PDF (the page's own @page rules); raises :class:`PdfUnavailable`.

    ``browser``: a Playwright browser to use (default: start headless Chromium for this).
    """
    if browser is None:
        with _Browser() as own:
            return html_to_pdf(html_path, pdf_path, browser=own)
    page = _open(browser, html_path)
    page.pdf(path=str(pdf_path), prefer_css_page_size=True, print_background=True)
    page.context.close()
    return pdf_path


def screenshot_first_page(html_path: Path, png_path: Path, *, scale: float = 2.0, browser: Any = None) -> Path:
    """The first A4 page as the screen shows it (794×1123 CSS px: one sheet per section)."""
    if browser is None:
        with _Browser() as own:
            return screenshot_first_page(html_path, png_path, scale=scale, browser=own)
    page = _open(browser, html_path, viewport={"width": 794, "height": 1123}, device_scale_factor=scale)
    page.screenshot(path=str(png_path), clip={"x": 0, "y": 0, "width": 794, "height": 1123})
    page.context.close()
    return png_path

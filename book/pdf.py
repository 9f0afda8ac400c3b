"""The whole book as one PDF, printed from the built site's own pages.

    .venv/bin/python book/pdf.py _build/html            # -> _build/html/attention-executable.pdf

Every page of ``_toc.yml``, in the book's order, is opened in headless Chromium (the browser the
site tests use: ``$D2L_ATTN_CHROMIUM``, else ``chromium`` on the PATH), MathJax is left to
typeset, the folded solutions and answers are opened, and the page is printed with the theme's
print stylesheet (no sidebars); the pages are then joined with ``pypdf``, with one bookmark per
page. So the PDF holds the same text, math, code, outputs and figures as the website. It takes
about a minute on two cores (the time is printed).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NAME = "attention-executable.pdf"


def toc_pages(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """The book's pages in reading order (``_toc.yml``: root, then every part's files)."""
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


# The flags keep Chromium from phoning home (component updates, sync, DNS for Google hosts),
# which on a closed network floods the log with refused connections. (The site tests launch
# the same browser the same way: tests/conftest.py.)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """``$D2L_ATTN_CHROMIUM``, else ``chromium`` (or ``chromium-browser``) on the PATH; None if none."""
    return os.environ.get("D2L_ATTN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def chromium() -> str:
    found = find_chromium()
    if found is None:
        raise SystemExit("book/pdf.py: no Chromium found (apt-get install chromium, or set D2L_ATTN_CHROMIUM)")
    return found


def launch(playwright):
    """Headless Chromium, started by ``playwright`` (``sync_playwright()``'s object)."""
    return playwright.chromium.launch(executable_path=chromium(), args=FLAGS)


PREPARE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden, .cell.tag_hide-input .cell_input, .cell.tag_hide-output .cell_output')
    .forEach(e => { e.classList.remove('toggle-hidden'); });
  // code and outputs wrap in print instead of running off the page
  const style = document.createElement('style');
  style.textContent = '@media print { pre, .output pre { white-space: pre-wrap !important; word-break: break-word; } }';
  document.head.appendChild(style);
  await new Promise(r => setTimeout(r, 300));
}"""


def build(site: Path, out: Path, pages: list[str] | None = None, browser=None) -> dict:
    """Print ``pages`` (default: the toc) of the built ``site`` into the PDF ``out``; returns a summary.

    ``browser``: a Playwright Chromium already running (the tests'); by default one is started.
    """
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            own = launch(pw)
            try:
                return build(site, out, pages, own)
            finally:
                own.close()
    from pypdf import PdfReader, PdfWriter

    site = site.resolve()
    pages = pages or toc_pages()
    missing = [p for p in pages if not (site / f"{p}.html").is_file()]
    if missing:
        raise SystemExit(f"book/pdf.py: {site} lacks {missing[:3]}: build the book first (README command 1)")
    started = time.monotonic()
    writer = PdfWriter()
    titles, starts = [], []
    context = browser.new_context()
    try:
        page = context.new_page()
        for name in pages:
            page.goto((site / f"{name}.html").as_uri(), wait_until="load")
            page.evaluate(PREPARE)
            title = (page.locator("main h1").first.text_content() or name).replace("#", "").strip()
            pdf = page.pdf(format="A4", print_background=True, margin={"top": "15mm", "bottom": "15mm"})
            starts.append(len(writer.pages))
            writer.append(PdfReader(io.BytesIO(pdf)), outline_item=title)
            titles.append(title)
    finally:
        context.close()
    writer.add_metadata({"/Title": "Attention, Executable"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        writer.write(handle)
    # starts: the index of each section's first page in the PDF
    return {"pages": len(writer.pages), "sections": titles, "starts": starts, "seconds": time.monotonic() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--out", type=Path, default=None, help=f"the PDF (default: SITE/{NAME})")
    args = parser.parse_args(argv)
    out = args.out or args.site / NAME
    summary = build(args.site, out)
    print(f"{out}: {summary['pages']} pages from {len(summary['sections'])} web pages in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

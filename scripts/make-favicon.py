#!/usr/bin/env python3
"""Rebuild web/static/favicon.ico from web/static/favicon.svg: Chromium (as in the browser tests)
renders the SVG at 16, 32 and 48 px and the PNGs are packed into one ICO (PNG entries, read by every
current browser). Run after changing the SVG: .venv/bin/python scripts/make-favicon.py"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
SIZES = (16, 32, 48)


def main() -> None:
    svg = (STATIC / "favicon.svg").read_text(encoding="utf-8")
    pngs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("TSUNAGU_CHROMIUM", "/usr/bin/chromium"),
                                    args=["--no-sandbox"])
        for size in SIZES:
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(f"<style>html,body{{margin:0;background:transparent}}"
                             f"svg{{display:block;width:{size}px;height:{size}px}}</style>{svg}")
            pngs.append((size, page.screenshot(omit_background=True)))
        browser.close()
    # ICONDIR, then one ICONDIRENTRY per image (width, height, colours, reserved, planes, bpp, size, offset)
    out = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    for size, png in pngs:
        out += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
    out += b"".join(png for _, png in pngs)
    (STATIC / "favicon.ico").write_bytes(out)
    print(f"web/static/favicon.ico: {len(out)} bytes, {', '.join(f'{s}px' for s in SIZES)}")


if __name__ == "__main__":
    main()

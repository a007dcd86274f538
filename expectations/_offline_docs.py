"""Make a built GX Data Docs site self-contained: vendored CSS/JS instead of CDN links."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "data_docs_vendor"
"""The vendored files (see its README.md for packages, versions and licences)."""

CDN_ASSETS: dict[str, str] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "css/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "js/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "js/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "css/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "css/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "js/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "css/bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "js/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "js/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "js/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "css/fontawesome-all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "css/bootstrap-prefers-dark.min.css",
}
"""Every CDN file GX 1.x Data Docs load, and its vendored copy under ``VENDOR_DIR``."""

# GX's logo comes from its web-asset bucket with a cache-busting query; the package ships it.
_GX_LOGO = re.compile(
    r"https://great-expectations-web-assets\.[^\"']*/(logo-long(?:-vector)?\.(?:png|svg))[^\"']*"
)
_ASSET_ATTR = re.compile(r"""<(?:script|img|link)\b[^>]*?\b(?:src|href)=["'](https?://[^"']+)""")


def remote_assets(html: str) -> list[str]:
    """The http(s) URLs a page loads as scripts, images or stylesheets (links are not counted)."""
    return _ASSET_ATTR.findall(html)


def make_offline(site: Path) -> list[str]:
    """Copy the vendored assets into ``site/static/vendor`` and point every page at them.

    Args:
        site: a built Data Docs folder (``index.html``, ``expectations/``, ``validations/``).

    Returns:
        Remote assets still referenced (empty when the site is self-contained); a GX upgrade
        that loads a new CDN file shows here.
    """
    vendor = site / "static" / "vendor"
    shutil.copytree(VENDOR_DIR, vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    left: set[str] = set()
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        rel = Path(os.path.relpath(vendor, page.parent)).as_posix()
        images = Path(os.path.relpath(site / "static" / "images", page.parent)).as_posix()
        for url, local in CDN_ASSETS.items():
            html = html.replace(f'"{url}"', f'"{rel}/{local}"')
        html = _GX_LOGO.sub(lambda m, images=images: f"{images}/{m.group(1)}", html)
        page.write_text(html, encoding="utf-8")
        left.update(remote_assets(html))
    return sorted(left)

"""Static guards on the dashboard's packaged assets: nothing loads from another
origin, no inline script, and no HTML is ever built from strings (data is
rendered as text through DOM APIs; the browser test checks the result)."""

from __future__ import annotations

import re

from runplane.api.ui.router import ASSETS, CSP, STATIC

HTML_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(")


def test_the_assets_are_packaged_and_served_by_name() -> None:
    assert {"index.html", "app.css", "js/main.js"} <= set(ASSETS)
    assert all(path.is_relative_to(STATIC) for path in ASSETS.values())


def test_no_asset_builds_html_from_strings() -> None:
    for name, path in ASSETS.items():
        text = path.read_text()
        assert not [sink for sink in HTML_SINKS if sink in text], name


def test_nothing_is_loaded_from_another_origin() -> None:
    for name, path in ASSETS.items():
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", path.read_text()), name
        assert "//cdn" not in path.read_text(), name


def test_the_page_has_no_inline_script_or_style() -> None:
    html = ASSETS["index.html"].read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all("src=" in tag for tag in scripts)
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handler


def test_the_policy_allows_only_the_pages_own_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in CSP

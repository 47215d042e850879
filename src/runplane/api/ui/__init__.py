"""The live dashboard at `/ui`: static HTML, CSS and ES modules shipped in the
package (no CDN, no build step), served under a strict Content-Security-Policy.
The page itself needs no key; every API call it makes carries the key the user
typed (kept in sessionStorage by the page)."""

from __future__ import annotations

from runplane.api.ui.router import install_ui as install_ui

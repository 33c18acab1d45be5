"""The CSM page: the book of accounts ranked by ARR at risk, served by the API at ``/ui``.

Server-rendered HTML (Jinja2, autoescaped), plain CSS, a few lines of vanilla JS and inline SVG
charts drawn on the server: nothing to build, nothing fetched from another site. See
:mod:`churnlens.serving.ui.app` for the routes and :mod:`churnlens.serving.ui.auth` for sign-in.
"""

from __future__ import annotations

from .app import build_ui_app, ui_app

__all__ = ["build_ui_app", "ui_app"]

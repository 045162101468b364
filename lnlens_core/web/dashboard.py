"""The dashboard page: one HTML file with its CSS and JS inlined (package data, no build step).

Inlining keeps it to one request, so the token in ``?token=`` never has to reach a second URL
(a browser cannot send a header with ``<script src>``). The page reads everything from the API.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

__all__ = ["page", "render"]


@cache
def render() -> str:
    static = files("lnlens_core.web").joinpath("static")
    html = static.joinpath("dashboard.html").read_text(encoding="utf-8")
    css = static.joinpath("dashboard.css").read_text(encoding="utf-8")
    js = static.joinpath("dashboard.js").read_text(encoding="utf-8")
    return html.replace("/*CSS*/", css, 1).replace("/*JS*/", js, 1)


async def page(request: Request) -> Response:
    # The URL carries the token: keep it out of caches and out of Referer headers.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(render(), headers=headers)

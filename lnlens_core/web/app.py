"""The ASGI application: routes, the token check, JSON errors. Read-only: GET (and HEAD) only."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import HEADER, token_matches, unauthorized_message
from .dashboard import page
from .openapi import openapi_document
from .params import BadRequest, parse_query
from .readers import Readers
from .views import ROUTES, Conflict, Live

__all__ = ["create_app", "OPENAPI_PATH"]

log = logging.getLogger(__name__)

OPENAPI_PATH = "/api/v1/openapi.json"
# Paths a browser opens itself (no way to set a header): these also take ?token=.
_QUERY_TOKEN_PATHS = ("/", "/api/v1/stream")


class TokenAuth:
    """ASGI middleware: every HTTP request and WebSocket needs the token, or gets 401 saying how."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app, self.token = app, token

    def _problem(self, scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        auth = headers.get(HEADER.lower())
        if auth:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer":
                return f"the {HEADER} header must be 'Bearer <token>'"
            return None if token_matches(given.strip(), self.token) else "wrong API token"
        if scope.get("path") in _QUERY_TOKEN_PATHS:
            query = QueryParams(scope.get("query_string", b"")).get("token")
            if query is not None:
                return None if token_matches(query, self.token) else "wrong API token"
        return "missing API token"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": unauthorized_message(problem=problem)}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="lnlens"')]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": problem})


def _endpoint(readers: Readers, live: Live, view: Any, params: tuple) -> Callable[[Request], Awaitable[Response]]:
    def answer(query: dict[str, Any]) -> dict[str, Any]:
        return view(readers.lens(), query, live)

    async def endpoint(request: Request) -> Response:
        q = request.query_params
        query = parse_query(q, params, multi={k: q.getlist(k) for k in q.keys()})
        return JSONResponse(await run_in_threadpool(answer, query))

    return endpoint


def _error(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=status)

    return handler


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    texts = {
        404: f"no such endpoint: {request.url.path} (see {OPENAPI_PATH})",
        405: f"{request.method} is not allowed: this API is read-only (GET)",
    }
    text = texts.get(exc.status_code, exc.detail)
    return JSONResponse({"error": text}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def create_app(
    readers: Readers,
    *,
    token: str,
    live: Live | None = None,
    extra_routes: list[Route | WebSocketRoute] = (),  # type: ignore[assignment]
) -> Any:
    """The API as an ASGI app (wrapped in the token check).

    :param extra_routes: the stream and the dashboard, added by :mod:`lnlens_core.web.server`.
    """
    live = live or Live()
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes: list[Any] = [Route(path, _endpoint(readers, live, view, params), methods=["GET"])
                         for path, (view, params, _) in ROUTES.items()]  # fmt: skip
    routes.append(Route(OPENAPI_PATH, openapi, methods=["GET"]))
    routes.append(Route("/", page, methods=["GET"]))
    routes.extend(extra_routes)
    app = Starlette(
        routes=routes,
        exception_handlers={
            BadRequest: _error(400),
            Conflict: _error(409),
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.readers, app.state.live = readers, live
    return TokenAuth(app, token=token)

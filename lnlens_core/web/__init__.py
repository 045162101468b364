"""lnlens's read-only live surface: an HTTP/JSON API over the store (Starlette + uvicorn, the ``web``
extra), a WebSocket event stream and a dashboard page, served by one process. See docs/api.md."""

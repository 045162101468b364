"""The API token: generated once into the data directory (mode 0600), required on every request.

Requests carry it as ``Authorization: Bearer <token>``. A browser cannot set that header when it
opens the dashboard page or a WebSocket, so those two also accept ``?token=<token>``.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from ..errors import ConfigError
from ..storage import private_dir

__all__ = ["TOKEN_FILE", "HEADER", "ensure_token", "token_matches", "unauthorized_message"]

TOKEN_FILE = "http-token"
HEADER = "Authorization"


def ensure_token(data_dir: Path) -> tuple[Path, str]:
    """Read ``<data_dir>/http-token``, creating it (random, mode 0600) if missing.

    :raises ConfigError: the file is readable by group or others, or empty.
    """
    path = Path(data_dir) / TOKEN_FILE
    private_dir(path.parent)
    try:
        # O_EXCL: two servers starting at once never overwrite each other's token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path}: the API token file must be readable by its owner only (chmod 600 {path})")
    token = path.read_text(encoding="ascii").strip()
    if not token:
        raise ConfigError(f"{path}: the API token file is empty (delete it and a new token is generated)")
    return path, token


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def unauthorized_message(*, problem: str) -> str:
    """The 401 answer: what is wrong and how to send a token, never where the token is kept (the
    client is not authenticated; the server's operator has the path, printed when it starts)."""
    return (
        f"{problem}: send the header '{HEADER}: Bearer <token>' with this server's API token "
        "(the dashboard page and the WebSocket stream also accept ?token=<token>)"
    )

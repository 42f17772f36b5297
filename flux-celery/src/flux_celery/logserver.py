"""Task logs across machines: each worker serves its log folder over HTTP, to signed requests only.

A try's log is written on the worker that ran it (``$FLUX_HOME/logs/...`` there). ``flux worker``
starts a small HTTP server on ``[celery] worker_log_server_port`` (default 8793) that answers

    GET /log/<dag_id>/<task_id>/<execution date>/<try>.log[?offset=N]

only with a header ``X-Flux-Log-Token: <expiry>.<hmac>``: an HMAC-SHA256 of the expiry time and of
the exact path, keyed with a key derived from the installation's shared secret (``[webserver]
secret_key``, else ``[core] fernet_key``: every machine of an installation has the same ones). A
token is valid for ``[celery] log_token_max_age`` seconds and for that one path, so a token seen
on the wire opens nothing else for long. The path is never joined as given: it is split into its
four parts, each must be a plain name (no ``/``, ``..``, NUL), the file name must be ``<int>.log``,
and the resolved file must lie inside the log folder (a symbolic link pointing out is refused).

:func:`fetch_remote_log` is the client: what the webserver calls for a try that ran elsewhere,
with the hostname recorded on the task instance.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from flux_celery.errors import RemoteLogError, UnsafeLogRequest

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Flux-Log-Token"
SIZE_HEADER = "X-Flux-Log-Size"
#: the most one response carries
CHUNK_BYTES = 1024 * 1024
_KEY_LABEL = b"flux-celery log server v1"


# --- signing -------------------------------------------------------------------------------------


def signing_key() -> bytes:
    """The key that signs log requests, derived from the installation's shared secret."""
    from flux.config import get_config
    from flux.crypto import split_keys

    config = get_config()
    secret = str(config.get("webserver", "secret_key", "") or "")
    if not secret:
        keys = split_keys(config.get("core", "fernet_key", ""))
        secret = keys[0] if keys else ""
    if not secret:
        raise RemoteLogError("no shared secret to sign log requests with: set [webserver] secret_key "
                             "(the same on the webserver and every worker)")
    # derived, so that the secret itself never serves as an HMAC key anyone could probe
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, expires: int, path: str) -> str:
    return hmac.new(key, f"{expires}\n{path}".encode(), hashlib.sha256).hexdigest()


def make_token(path: str, max_age: int | None = None, now: float | None = None) -> str:
    """A token allowing a GET of ``path`` for ``max_age`` seconds."""
    max_age = max_age if max_age is not None else _max_age()
    expires = int((now if now is not None else time.time()) + max_age)
    return f"{expires}.{_mac(signing_key(), expires, path)}"


def check_token(path: str, token: str | None, max_age: int | None = None,
                now: float | None = None) -> None:
    """Raise :class:`UnsafeLogRequest` unless ``token`` is a valid, current token for ``path``."""
    if not token:
        raise UnsafeLogRequest("missing log token")
    expires_text, _, mac = token.partition(".")
    try:
        expires = int(expires_text)
    except ValueError:
        raise UnsafeLogRequest("malformed log token") from None
    now = now if now is not None else time.time()
    max_age = max_age if max_age is not None else _max_age()
    if not hmac.compare_digest(mac, _mac(signing_key(), expires, path)):
        raise UnsafeLogRequest("bad log token signature")
    if expires < now:
        raise UnsafeLogRequest("expired log token")
    if expires > now + 2 * max_age:  # a token minted to last far longer than allowed
        raise UnsafeLogRequest("log token lives too long")


def _max_age() -> int:
    from flux_celery.settings import CelerySettings

    return CelerySettings.from_config().log_token_max_age


# --- paths ---------------------------------------------------------------------------------------


def _plain(name: str, value: str) -> str:
    if (not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value
            or os.path.isabs(value)):
        raise UnsafeLogRequest(f"{name} {value!r} is not a plain name")
    return value


def log_url_path(dag_id: str, task_id: str, execution_date: datetime, try_number: int) -> str:
    """The URL path of a try's log on its worker's log server."""
    from flux.dates import path_component

    if try_number < 1:
        raise UnsafeLogRequest(f"try number {try_number} is not 1 or more")
    parts = [_plain("dag_id", dag_id), _plain("task_id", task_id),
             _plain("execution date", path_component(execution_date)), f"{int(try_number)}.log"]
    return "/log/" + "/".join(quote(part, safe="") for part in parts)


def resolve_log_file(url_path: str, folder: Path) -> Path:
    """The file ``url_path`` names inside ``folder``; :class:`UnsafeLogRequest` for anything else."""
    if not url_path.startswith("/log/"):
        raise UnsafeLogRequest("not a log path")
    raw_parts = url_path[len("/log/"):].split("/")
    if len(raw_parts) != 4:
        raise UnsafeLogRequest("a log path has four parts: dag/task/date/try.log")
    names = ["dag_id", "task_id", "execution date", "file name"]
    parts = [_plain(name, unquote(raw, errors="strict")) for name, raw in zip(names, raw_parts,
                                                                              strict=True)]
    stem, dot, ext = parts[3].partition(".")
    if not (dot and ext == "log" and stem.isdigit() and int(stem) >= 1):
        raise UnsafeLogRequest(f"file name {parts[3]!r} is not <try>.log")
    root = folder.resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise UnsafeLogRequest("the log path leads outside the log folder")
    return path


# --- server --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "flux-log-server"
    folder: Path  # set on the subclass the server is made with

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        try:
            check_token(parts.path, self.headers.get(TOKEN_HEADER))
        except UnsafeLogRequest as exc:
            return self._reply(HTTPStatus.FORBIDDEN, f"{exc}\n")
        except RemoteLogError as exc:
            return self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n")
        try:
            path = resolve_log_file(parts.path, self.folder)
            offset = int(parse_qs(parts.query).get("offset", ["0"])[0])
        except (UnsafeLogRequest, ValueError, UnicodeDecodeError) as exc:
            return self._reply(HTTPStatus.BAD_REQUEST, f"bad log request: {exc}\n")
        try:
            handle = open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return self._reply(HTTPStatus.NOT_FOUND, "no such log on this worker\n")
        with handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(min(max(offset, 0), size))
            data = handle.read(CHUNK_BYTES)
        self._reply(HTTPStatus.OK, data, size=size)

    def _reply(self, status: HTTPStatus, body: str | bytes, size: int | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if size is not None:
            self.send_header(SIZE_HEADER, str(size))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("log server: " + format, *args)


def serve_logs(port: int, host: str = "", folder: Path | None = None) -> ThreadingHTTPServer:
    """Start serving ``folder`` (default: the log folder) in a daemon thread; returns the server."""
    from flux.config import get_config

    signing_key()  # no secret: fail now, with a clear message, rather than on every request
    handler = type("LogHandler", (_Handler,), {"folder": folder or get_config().log_folder})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="flux-log-server", daemon=True)
    thread.start()
    return server


# --- client --------------------------------------------------------------------------------------


@dataclass
class RemoteLog:
    """Part of a log file fetched from a worker: ``text`` from byte ``offset`` to ``next_offset``."""

    text: str
    offset: int
    next_offset: int
    size: int
    exists: bool


def fetch_remote_log(ti_hostname: str, dag_id: str, task_id: str, execution_date: datetime,
                     try_number: int, *, offset: int = 0, port: int | None = None,
                     timeout: float = 10.0) -> RemoteLog:
    """The log of one try from the log server of the worker host that ran it.

    ``ti_hostname`` is the task instance's ``hostname`` column. A log the worker does not have gives
    ``exists=False``; an unreachable worker or a refused request raises :class:`RemoteLogError`.
    """
    import urllib.error
    import urllib.request

    from flux_celery.settings import CelerySettings

    if not ti_hostname or any(c in ti_hostname for c in "/@?#[] "):
        raise RemoteLogError(f"cannot fetch a log from host {ti_hostname!r}")
    port = port or CelerySettings.from_config().worker_log_server_port
    if not port:
        raise RemoteLogError("the workers' log server is off ([celery] worker_log_server_port = 0)")
    path = log_url_path(dag_id, task_id, execution_date, try_number)
    url = f"http://{ti_hostname}:{port}{path}" + (f"?offset={int(offset)}" if offset else "")
    request = urllib.request.Request(url, headers={TOKEN_HEADER: make_token(path)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
            size = int(response.headers.get(SIZE_HEADER) or len(data))
    except urllib.error.HTTPError as exc:
        if exc.code == HTTPStatus.NOT_FOUND:
            return RemoteLog("", 0, 0, 0, exists=False)
        detail = exc.read().decode(errors="replace").strip()[:200]
        raise RemoteLogError(f"log server {ti_hostname}:{port} refused the request: {exc.code} "
                             f"{detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteLogError(f"cannot reach the log server of {ti_hostname}:{port}: {reason}") from None
    start = min(max(offset, 0), size)
    return RemoteLog(data.decode("utf-8", errors="replace"), start, start + len(data), size,
                     exists=True)

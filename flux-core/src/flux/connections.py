"""Connections: how to reach outside systems, by name (``conn_id``). The public API.

A connection comes from, in order:

1. an environment variable ``FLUX_CONN_<CONN_ID>`` holding a URI
   (``FLUX_CONN_LOCAL_MYSQL='mysql://user:pa%40ss@host:3306/db?charset=utf8mb4'``);
2. the ``connection`` table of the metadata database (``flux connections add``).

In the table the password, and every value of ``extra`` under a secret-looking key (see
:func:`flux.crypto.is_secret_key`), are stored encrypted with the Fernet key of flux.toml. ``extra``
is stored as JSON in which each secret value is replaced by ``{"$fernet": "<token>"}``, so the
non-secret settings stay readable in the database while the secrets never appear in it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from flux import crypto
from flux.exceptions import (
    ConnectionExists,
    ConnectionNotFound,
    InvalidConnection,
    InvalidConnectionURI,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from flux.models import Connection

ENV_PREFIX = "FLUX_CONN_"
MASK = "***"
ENCRYPTED_MARKER = "$fernet"
URI_FORMAT = "TYPE://[LOGIN[:PASSWORD]@]HOST[:PORT][/SCHEMA][?KEY=VALUE&...]"

#: URI schemes that name the same connection type as another one.
SCHEME_ALIASES = {"postgresql": "postgres", "pgsql": "postgres", "mariadb": "mysql"}

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-_]*$")
_ID_MAX = 250
_PORT_HINT = " (special characters in a password must be %-quoted, e.g. '/' as %2F)"


# --- the connection record -----------------------------------------------------------------------


@dataclass(repr=False)
class ConnectionInfo:
    """Everything needed to reach one outside system; ``password`` and ``extra`` hold plain values.

    ``source`` tells where it was read from (``"db"`` or ``"env"``); it takes no part in equality.
    The ``repr`` never shows the password or secret extras, so it is safe to log.
    """

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    source: str = field(default="db", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.port, str):
            self.port = _parse_port(self.port, InvalidConnection, f"connection {self.conn_id!r}: ")
        if self.extra is None:
            self.extra = {}

    def __repr__(self) -> str:
        return f"<ConnectionInfo {self.conn_id!r} {self.masked_uri()}>"

    # -- validation --

    def validate(self) -> None:
        """Raise :class:`InvalidConnection` naming the first field that cannot be stored."""
        if not isinstance(self.conn_id, str) or not self.conn_id.strip():
            raise InvalidConnection("a connection needs a non-empty conn_id")
        if self.conn_id != self.conn_id.strip() or len(self.conn_id) > _ID_MAX:
            raise InvalidConnection(
                f"conn_id {self.conn_id!r} must have no surrounding spaces and at most {_ID_MAX} characters"
            )
        if not isinstance(self.conn_type, str) or not self.conn_type.strip():
            raise InvalidConnection(f"connection {self.conn_id!r} needs a conn_type (mysql, postgres...)")
        if len(self.conn_type) > 50:
            raise InvalidConnection(f"connection {self.conn_id!r}: conn_type is longer than 50 characters")
        if self.port is not None and (
            isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535
        ):
            raise InvalidConnection(f"connection {self.conn_id!r}: port {self.port!r} is not in 0..65535")
        if not isinstance(self.extra, dict):
            raise InvalidConnection(
                f"connection {self.conn_id!r}: extra must be a JSON object (a dict), "
                f"not {type(self.extra).__name__}"
            )
        try:
            json.dumps(self.extra)
        except (TypeError, ValueError) as exc:
            raise InvalidConnection(
                f"connection {self.conn_id!r}: extra is not JSON-serializable: {exc}"
            ) from None

    # -- views --

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """``extra`` as a dict (a copy); the name Airflow users know."""
        return json.loads(json.dumps(self.extra))

    def masked_extra(self) -> dict[str, Any]:
        """``extra`` with every secret value replaced by ``***``."""
        return _map_secrets(self.extra, lambda _value: MASK)

    def get_uri(self) -> str:
        """The connection as a URI (the form ``FLUX_CONN_`` variables and ``--uri`` take).

        Login, password and schema are %-quoted. String-only extras become query parameters;
        other extras (numbers, nested objects) are passed whole as JSON in ``__extra__``.
        """
        return self._uri(self.password)

    def masked_uri(self) -> str:
        """:meth:`get_uri` with the password and secret extras shown as ``***`` (safe to print)."""
        masked = dataclasses.replace(self, extra=self.masked_extra())
        return masked._uri(MASK if self.password else self.password, for_display=True)

    def _uri(self, password: str | None, for_display: bool = False) -> str:
        scheme = self.conn_type.replace("_", "-")
        userinfo = ""
        if self.login is not None or password is not None:
            userinfo = quote(self.login or "", safe="")
            if password is not None:
                userinfo += ":" + (password if for_display else quote(password, safe=""))
            userinfo += "@"
        host = quote(self.host or "", safe="")
        if host and ":" in (self.host or ""):
            host = f"[{self.host}]"  # IPv6 literal
        if self.port is not None:
            host += f":{self.port}"
        uri = f"{scheme}://{userinfo}{host}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        if self.extra:
            # Shown to people, JSON stays readable; a real URI quotes it.
            safe = '{}[]":,*' if for_display else ""
            if all(isinstance(value, str) for value in self.extra.values()):
                uri += "?" + urlencode(self.extra, safe=safe)
            else:
                whole = json.dumps(self.extra, separators=(",", ":"), ensure_ascii=False)
                uri += "?" + urlencode({"__extra__": whole}, safe=safe)
        return uri

    def to_dict(self, *, mask: bool = True) -> dict[str, Any]:
        """The fields as a dict; with ``mask`` the password and secret extras are ``***``."""
        password = (MASK if self.password else self.password) if mask else self.password
        return {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "password": password,
            "schema": self.schema,
            "extra": self.masked_extra() if mask else self.extra_dejson,
            "source": self.source,
        }

    # -- parsing --

    @classmethod
    def from_uri(cls, conn_id: str, uri: str, *, description: str | None = None) -> ConnectionInfo:
        """Parse a connection URI such as ``mysql://user:pa%40ss@host:3306/db?charset=utf8mb4``.

        The scheme is the ``conn_type`` (lower-cased, dashes turned into underscores, ``+driver``
        dropped, ``postgresql`` read as ``postgres``); query parameters become ``extra``, and a
        ``__extra__`` parameter may hold a whole JSON object. Raises :class:`InvalidConnectionURI`.
        """
        return cls(conn_id=conn_id, description=description, **parse_uri(uri))


def normalize_conn_type(scheme: str) -> str:
    """``PostgreSQL+psycopg`` -> ``postgres``, ``google-cloud`` -> ``google_cloud``."""
    base = scheme.strip().lower().split("+", 1)[0].replace("-", "_")
    return SCHEME_ALIASES.get(base, base)


def redact_uri(uri: str) -> str:
    """The URI with anything that might be a password replaced by ``***`` (for error messages)."""
    scheme, sep, rest = str(uri).partition("://")
    if not sep:
        return "***" if "@" in uri or ":" in uri else uri
    at = rest.rfind("@")
    if at < 0:
        return uri
    login = rest[:at].split(":", 1)[0]
    return f"{scheme}://{login}:{MASK}@{rest[at + 1:]}"


def _parse_port(text: str, error: type[Exception], where: str, hint: str = "") -> int:
    text = text.strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise error(f"{where}port {text!r} is not a number in 0..65535{hint}")
    return int(text)


def parse_uri(uri: str) -> dict[str, Any]:
    """The fields of a connection URI as keyword arguments of :class:`ConnectionInfo`."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidConnectionURI("connection URI is empty; expected " + URI_FORMAT)
    uri = uri.strip()
    shown = redact_uri(uri)
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise InvalidConnectionURI(f"connection URI {shown!r} has no TYPE:// scheme; expected {URI_FORMAT}")
    if not _SCHEME_RE.match(scheme):
        raise InvalidConnectionURI(f"connection URI scheme {scheme!r} is not valid; expected {URI_FORMAT}")
    if "#" in rest:
        raise InvalidConnectionURI(
            f"connection URI {shown!r} contains '#'; write '#' in a password or value as %23"
        )
    if any(ch.isspace() for ch in rest):
        raise InvalidConnectionURI(
            f"connection URI {shown!r} contains whitespace; write spaces as %20"
        )
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:authority_end], rest[authority_end:]
    path, _, query = tail.partition("?")

    userinfo, at, hostport = netloc.rpartition("@")
    login = password = None
    if at:
        raw_login, colon, raw_password = userinfo.partition(":")
        login = unquote(raw_login) if raw_login or not colon else None
        password = unquote(raw_password) if colon else None

    port: int | None = None
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise InvalidConnectionURI(f"connection URI {shown!r}: '[' of an IPv6 host is not closed")
        host, after = hostport[1:close], hostport[close + 1:]
        if after:
            if not after.startswith(":"):
                raise InvalidConnectionURI(f"connection URI {shown!r}: unexpected {after!r} after the host")
            port = _parse_port(after[1:], InvalidConnectionURI, f"connection URI {shown!r}: ", _PORT_HINT)
    else:
        host, colon, port_text = hostport.partition(":")
        if colon:
            port = _parse_port(port_text, InvalidConnectionURI, f"connection URI {shown!r}: ", _PORT_HINT)
        host = unquote(host)

    schema = unquote(path[1:]) if path.startswith("/") else None

    extra: dict[str, Any] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise InvalidConnectionURI(
                f"connection URI {shown!r}: the part after '?' must be KEY=VALUE pairs joined by '&'"
            ) from None
        for key, value in pairs:
            if key == "__extra__":
                try:
                    loaded = json.loads(value)
                except ValueError as exc:
                    raise InvalidConnectionURI(
                        f"connection URI: __extra__ is not valid JSON: {exc}"
                    ) from None
                if not isinstance(loaded, dict):
                    raise InvalidConnectionURI("connection URI: __extra__ must be a JSON object")
                extra.update(loaded)
            else:
                extra[key] = value
    return {
        "conn_type": normalize_conn_type(scheme),
        "host": host or None,
        "port": port,
        "login": login,
        "password": password,
        "schema": schema or None,
        "extra": extra,
    }


# --- secrets inside extra ------------------------------------------------------------------------


def _map_secrets(value: Any, transform: Any, secret: bool = False) -> Any:
    """A copy of ``value`` with ``transform`` applied to every value under a secret-looking key."""
    if secret:
        return transform(value)
    if isinstance(value, dict):
        return {k: _map_secrets(v, transform, crypto.is_secret_key(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_secrets(v, transform) for v in value]
    return value


def _is_encrypted_value(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(ENCRYPTED_MARKER), str)


def _decrypt_tree(value: Any) -> Any:
    if _is_encrypted_value(value):
        return json.loads(crypto.decrypt(value[ENCRYPTED_MARKER]))
    if isinstance(value, dict):
        return {k: _decrypt_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypt_tree(v) for v in value]
    return value


def _rotate_tree(value: Any) -> Any:
    if _is_encrypted_value(value):
        return {ENCRYPTED_MARKER: crypto.rotate_token(value[ENCRYPTED_MARKER])}
    if isinstance(value, dict):
        return {k: _rotate_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rotate_tree(v) for v in value]
    return value


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secrets_of(info: ConnectionInfo) -> set[str]:
    """The secret strings of a connection (password, secret extras), for masking them in logs."""
    found: set[str] = set()
    if info.password:
        found.add(info.password)
        found.add(quote(info.password, safe=""))  # as it would appear inside a logged URI
    secret_values: list[Any] = []
    _map_secrets(info.extra, secret_values.append)
    for value in secret_values:
        found.update(_leaves(value))
    return {value for value in found if value}


_registry: set[str] = set()
_registry_lock = threading.Lock()
#: Secrets loaded while a DAG file was imported. Its tasks use them (a password handed on in
#: ``params`` or ``op_kwargs``) in tries that start later, so :func:`clear_secrets` keeps them.
_lasting: set[str] = set()
_importing = threading.local()


def register_secret(value: str | None) -> None:
    """Remember a secret of this process so that task logs mask it (empty values are ignored)."""
    if value:
        with _registry_lock:
            _registry.add(str(value))
            if getattr(_importing, "depth", 0):
                _lasting.add(str(value))


@contextmanager
def lasting_secrets() -> Iterator[None]:
    """Secrets registered in this thread inside the block outlive :func:`clear_secrets`.

    The DAG bag imports DAG files inside it: a connection read at the top of a DAG file is then
    masked in the logs and rendered fields of every task of this process, not only until the
    first try starts.
    """
    _importing.depth = getattr(_importing, "depth", 0) + 1
    try:
        yield
    finally:
        _importing.depth -= 1


def register_secrets(values: Iterable[str]) -> None:
    """:func:`register_secret` for each value."""
    for value in values:
        register_secret(value)


def known_secrets() -> frozenset[str]:
    """Every secret registered in this process so far (what log masking hides)."""
    with _registry_lock:
        return frozenset(_registry)


def clear_secrets() -> None:
    """Forget the secrets registered so far (a worker starting a new task; tests), except those
    that DAG files loaded while they were imported (see :func:`lasting_secrets`)."""
    with _registry_lock:
        _registry.clear()
        _registry.update(_lasting)


# --- storage ---------------------------------------------------------------------------------------


def _to_row(info: ConnectionInfo, row: Connection) -> None:
    """Fill a table row from ``info``, encrypting the password and secret extras."""
    row.conn_id = info.conn_id
    row.conn_type = info.conn_type
    row.description = info.description
    row.host = info.host
    row.port = info.port
    row.login = info.login
    row.schema = info.schema
    if info.password is None:
        row.password, row.is_encrypted = None, False
    else:
        row.password, row.is_encrypted = crypto.encrypt(info.password), True
    encrypted_any = False

    def seal(value: Any) -> dict[str, str]:
        nonlocal encrypted_any
        encrypted_any = True
        return {ENCRYPTED_MARKER: crypto.encrypt(json.dumps(value))}

    sealed = _map_secrets(info.extra, seal)
    row.extra = json.dumps(sealed) if info.extra else None
    row.is_extra_encrypted = encrypted_any


def _from_row(row: Connection) -> ConnectionInfo:
    password = row.password
    if password is not None and row.is_encrypted:
        password = crypto.decrypt(password)
    extra: dict[str, Any] = {}
    if row.extra:
        text = row.extra
        if row.is_extra_encrypted and not text.lstrip().startswith("{"):
            text = crypto.decrypt(text)  # the whole extra encrypted as one token
        try:
            loaded = json.loads(text)
        except ValueError:
            raise InvalidConnection(f"connection {row.conn_id!r}: stored extra is not valid JSON") from None
        extra = _decrypt_tree(loaded) if row.is_extra_encrypted else loaded
    return ConnectionInfo(
        conn_id=row.conn_id,
        conn_type=row.conn_type,
        host=row.host,
        port=row.port,
        login=row.login,
        password=password,
        schema=row.schema,
        extra=extra,
        description=row.description,
        source="db",
    )


def env_var_names(conn_id: str) -> list[str]:
    """The environment variables that may define ``conn_id``, first one wins.

    ``FLUX_CONN_`` + the id upper-cased; and, when the id has characters other than letters,
    digits and ``_``, the same with those characters turned into ``_`` (``my-db`` ->
    ``FLUX_CONN_MY_DB``), since shells cannot set names with dashes.
    """
    names = [ENV_PREFIX + conn_id.upper()]
    safe = ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", conn_id).upper()
    if safe not in names:
        names.append(safe)
    return names


def _from_env(conn_id: str) -> ConnectionInfo | None:
    for name in env_var_names(conn_id):
        value = os.environ.get(name)
        if value:
            try:
                info = ConnectionInfo.from_uri(conn_id, value)
            except InvalidConnectionURI as exc:
                raise InvalidConnectionURI(f"environment variable {name}: {exc}") from None
            info.source = "env"
            return info
    return None


def _find_row(session: Session, conn_id: str) -> Connection | None:
    from sqlalchemy import select

    from flux.models import Connection

    return session.scalar(select(Connection).where(Connection.conn_id == conn_id))


def _not_found(conn_id: str) -> ConnectionNotFound:
    return ConnectionNotFound(
        f"connection {conn_id!r} not found; add it with: flux connections add {conn_id} --uri ..."
    )


def get_connection(conn_id: str) -> ConnectionInfo:
    """The connection ``conn_id``, from ``FLUX_CONN_<ID>`` if set, else from the table.

    Raises :class:`ConnectionNotFound`, or :class:`FernetKeyError` when its secrets cannot be read.
    """
    from_env = _from_env(conn_id)
    if from_env is not None:
        return from_env
    from flux.db import session_scope

    with session_scope() as session:
        row = _find_row(session, conn_id)
        if row is None:
            raise _not_found(conn_id)
        return _from_row(row)


def add_connection(info: ConnectionInfo, replace: bool = False) -> ConnectionInfo:
    """Store ``info`` in the table (secrets encrypted); :class:`ConnectionExists` unless ``replace``.

    Returns a copy of what was stored.
    """
    from sqlalchemy.exc import IntegrityError

    from flux.db import session_scope
    from flux.models import Connection

    info.validate()
    staged = Connection()
    _to_row(info, staged)  # encrypt first: a key problem must fail before anything is written
    try:
        with session_scope() as session:
            row = _find_row(session, info.conn_id)
            if row is not None and not replace:
                raise _exists(info.conn_id)
            if row is None:
                row = Connection()
                session.add(row)
            for column in Connection.__table__.columns.keys():
                if column != "id":
                    setattr(row, column, getattr(staged, column))
    except IntegrityError:  # added by someone else between our check and our insert
        raise _exists(info.conn_id) from None
    stored = dataclasses.replace(info, extra=info.extra_dejson)
    stored.source = "db"
    return stored


def _exists(conn_id: str) -> ConnectionExists:
    return ConnectionExists(
        f"connection {conn_id!r} already exists; "
        f"replace it with: flux connections add {conn_id} --replace ..."
    )


def list_connections(include_env: bool = False) -> list[ConnectionInfo]:
    """Every connection of the table, sorted by id; with ``include_env`` also ``FLUX_CONN_`` ones.

    A connection defined both ways is listed once, as the environment defines it (that one wins).
    """
    from sqlalchemy import select

    from flux.db import session_scope
    from flux.models import Connection

    with session_scope() as session:
        found = {row.conn_id: _from_row(row) for row in session.scalars(select(Connection))}
    if include_env:
        for name, value in os.environ.items():
            if name.startswith(ENV_PREFIX) and value and len(name) > len(ENV_PREFIX):
                env_id = name[len(ENV_PREFIX):].lower()
                match = next((cid for cid in found if name in env_var_names(cid)), env_id)
                info = _from_env(match)
                if info is not None:
                    found[match] = info
    return [found[key] for key in sorted(found)]


def delete_connection(conn_id: str) -> None:
    """Remove ``conn_id`` from the table; :class:`ConnectionNotFound` if it is not there."""
    from flux.db import session_scope

    with session_scope() as session:
        row = _find_row(session, conn_id)
        if row is None:
            env = next((name for name in env_var_names(conn_id) if os.environ.get(name)), None)
            if env:
                raise ConnectionNotFound(
                    f"connection {conn_id!r} is defined by the environment variable {env}, "
                    "not stored in the database; unset the variable to remove it"
                )
            raise _not_found(conn_id)
        session.delete(row)


# --- key rotation ----------------------------------------------------------------------------------


def rotate_fernet_key() -> int:
    """Re-encrypt every stored secret with the first key of ``[core] fernet_key``.

    Covers connection passwords and extras, and encrypted variables. Runs in one transaction:
    if any secret cannot be decrypted with the configured keys, nothing changes. Returns the
    number of rows re-encrypted.
    """
    from sqlalchemy import select

    from flux.db import session_scope
    from flux.models import Connection, Variable

    count = 0
    with session_scope() as session:
        for row in session.scalars(select(Connection).order_by(Connection.id)):
            changed = False
            if row.password is not None:
                row.password = (
                    crypto.rotate_token(row.password) if row.is_encrypted else crypto.encrypt(row.password)
                )
                row.is_encrypted = changed = True
            if row.extra and row.is_extra_encrypted:
                text = row.extra
                if not text.lstrip().startswith("{"):
                    text = crypto.decrypt(text)
                row.extra = json.dumps(_rotate_tree(json.loads(text)))
                changed = True
            elif row.extra:
                # Stored before its keys looked secret, or by another tool: seal what must be sealed.
                info = _from_row(row)
                staged = Connection()
                _to_row(info, staged)
                if staged.is_extra_encrypted:
                    row.extra, row.is_extra_encrypted = staged.extra, True
                    changed = True
            count += changed
        for variable in session.scalars(select(Variable).where(Variable.is_encrypted.is_(True))):
            if variable.val is not None:
                variable.val = crypto.rotate_token(variable.val)
                count += 1
    return count


@dataclass
class KeySwitch:
    """What :func:`switch_fernet_key` did."""

    rotated: int
    from_environment: bool


def switch_fernet_key(new_key: str | None = None) -> KeySwitch:
    """Move every stored secret to a new Fernet key (generated unless given), losing nothing.

    Writes ``"new,old"`` to flux.toml, re-encrypts (:func:`rotate_fernet_key`), then writes
    ``"new"``. Each step leaves every secret readable, so an interrupted rotation can be run again.
    If ``fernet_key`` already holds several keys, the first is taken as the new one. When the key
    comes from ``FLUX__CORE__FERNET_KEY`` (which Flux cannot rewrite), it must hold ``"new,old"``.
    """
    from flux.config import get_config
    from flux.exceptions import FernetKeyError

    config = get_config()
    keys = crypto.configured_keys()
    if crypto.key_from_environment():
        if len(keys) < 2 or new_key:
            raise FernetKeyError(
                f"[core] fernet_key comes from {crypto.KEY_ENV}, which Flux cannot rewrite: set it to "
                "'NEW,OLD' (a new key first), run `flux rotate-fernet-key` again, then set it to 'NEW'"
            )
        crypto.check_keys(keys)
        return KeySwitch(rotate_fernet_key(), True)
    original = str(config.get("core", "fernet_key", "") or "")
    if new_key is None and len(keys) > 1:
        new, old = keys[0], keys[1:]
    else:
        new, old = (new_key or crypto.generate_key()).strip(), keys
    if "," in new or not new:
        raise FernetKeyError("the new Fernet key must be a single key")
    staged = ",".join([new, *[key for key in old if key != new]])
    crypto.check_keys(crypto.split_keys(staged))  # an invalid key fails here, before any write
    config.set_persistent("core", "fernet_key", staged)
    try:
        rotated = rotate_fernet_key()
    except BaseException:
        config.set_persistent("core", "fernet_key", original)
        raise
    config.set_persistent("core", "fernet_key", new)
    return KeySwitch(rotated, False)

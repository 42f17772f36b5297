"""Encryption of secrets at rest (connection passwords, secret extras, variables) with Fernet.

The key is ``[core] fernet_key`` of flux.toml. It may hold several comma-separated keys,
``"new,old"``: the first one encrypts, every one of them decrypts. That is how a key is rotated
without losing data (see :func:`flux.connections.switch_fernet_key`):

1. write ``"new,old"``; 2. re-encrypt every stored secret with the first key; 3. write ``"new"``.

When the setting is empty, a key is generated the first time something has to be encrypted and
written to flux.toml (``flux db init`` does it up front).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flux.exceptions import FernetKeyError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_ENV = "FLUX__CORE__FERNET_KEY"

_cache: dict[str, MultiFernet] = {}
_lock = threading.Lock()

# Fragments of extra keys whose values are secrets. Keys are compared lower-cased with separators
# removed, so "API-Key", "api_key" and "apiKey" all match "apikey".
SECRET_KEY_FRAGMENTS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "credential",
    "authorization",
    "sessionkey",
    "signingkey",
    "encryptionkey",
    "connectionstring",
)


def is_secret_key(name: str) -> bool:
    """Whether an ``extra`` key looks like it holds a secret (its value is encrypted and masked).

    >>> is_secret_key("api_key"), is_secret_key("client-secret"), is_secret_key("charset")
    (True, True, False)
    """
    squashed = re.sub(r"[\s_\-.]", "", str(name)).lower()
    return any(fragment in squashed for fragment in SECRET_KEY_FRAGMENTS)


def generate_key() -> str:
    """A new random Fernet key (32 url-safe base64-encoded bytes), as text."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def split_keys(value: str | None) -> list[str]:
    """The keys of a ``fernet_key`` setting: ``"new,old"`` -> ``["new", "old"]``."""
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def configured_keys() -> list[str]:
    """The keys of ``[core] fernet_key`` as configured now (possibly none)."""
    from flux.config import get_config

    return split_keys(get_config().get("core", "fernet_key", ""))


def key_from_environment() -> bool:
    """Whether ``[core] fernet_key`` comes from ``FLUX__CORE__FERNET_KEY`` (so flux.toml cannot change it)."""
    return bool(os.environ.get(KEY_ENV, "").strip())


def _multi_fernet(keys: list[str]) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    cache_key = ",".join(keys)
    found = _cache.get(cache_key)
    if found is not None:
        return found
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            which = f"key {position} of " if len(keys) > 1 else ""
            raise FernetKeyError(
                f"{which}[core] fernet_key is not a valid Fernet key (32 url-safe base64-encoded "
                "bytes; make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
    found = _cache[cache_key] = MultiFernet(fernets)
    return found


def check_keys(keys: list[str]) -> None:
    """Raise :class:`FernetKeyError` unless every key is a valid Fernet key."""
    _multi_fernet(keys)


def ensure_key() -> str:
    """The ``[core] fernet_key`` setting, generated and saved to flux.toml first if it is empty."""
    from flux.config import get_config

    config = get_config()
    current = str(config.get("core", "fernet_key", "") or "")
    if split_keys(current):
        return current
    with _lock, _exclusive_lock(config.home):
        # Another process may have written a key while we waited: use it rather than replace it,
        # or whatever that process encrypted would become unreadable.
        written = _key_in_file(config.path)
        if written:
            config.set_persistent("core", "fernet_key", written)
            return written
        key = generate_key()
        config.set_persistent("core", "fernet_key", key)
        return key


def _key_in_file(path: os.PathLike[str]) -> str:
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    core = data.get("core")
    value = core.get("fernet_key", "") if isinstance(core, dict) else ""
    return str(value) if split_keys(str(value)) else ""


@contextmanager
def _exclusive_lock(home: os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock on ``$FLUX_HOME/.fernet_key.lock`` (none where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: two first-time generations could race; rare and visible
        yield
        return
    os.makedirs(home, exist_ok=True)
    handle = os.open(os.path.join(home, ".fernet_key.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def get_fernet(*, create: bool = True) -> MultiFernet:
    """The configured keys as a ``MultiFernet`` (a key is generated first when ``create`` and none is set)."""
    keys = split_keys(ensure_key()) if create else configured_keys()
    if not keys:
        raise FernetKeyError(
            "secrets are stored encrypted but [core] fernet_key is empty: "
            "restore the key they were encrypted with in flux.toml"
        )
    return _multi_fernet(keys)


def encrypt(text: str) -> str:
    """Encrypt ``text`` with the first configured key; returns the Fernet token as text."""
    return get_fernet().encrypt(str(text).encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a token made by :func:`encrypt` with any configured key.

    Raises :class:`FernetKeyError` when no configured key can read it (the key was changed).
    """
    from cryptography.fernet import InvalidToken

    fernet = get_fernet(create=False)
    try:
        return fernet.decrypt(str(token).encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        raise FernetKeyError(
            "cannot decrypt a stored secret with [core] fernet_key: the key is not the one it was "
            "encrypted with (restore the old key, or set fernet_key to 'new,old' while rotating)"
        ) from None


def rotate_token(token: str) -> str:
    """Re-encrypt a token with the first configured key (it may have been made with any of them)."""
    from cryptography.fernet import InvalidToken

    fernet = get_fernet(create=False)
    try:
        return fernet.rotate(str(token).encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise FernetKeyError(
            "cannot re-encrypt a stored secret: none of the keys in [core] fernet_key can decrypt it "
            "(the old key must stay in the list, 'new,old', until rotation is done)"
        ) from None


def clear_cache() -> None:
    """Forget the parsed keys (tests switch keys often; parsing is cheap anyway)."""
    _cache.clear()

"""flux.crypto: the Fernet key in flux.toml, encryption, wrong keys, "new,old" rotation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from flux import crypto
from flux.config import get_config, reset_config
from flux.exceptions import FernetKeyError


def _stored_key(home: Path) -> str:
    with (home / "flux.toml").open("rb") as handle:
        return tomllib.load(handle)["core"]["fernet_key"]


def _use_key(value: str) -> None:
    get_config().set_persistent("core", "fernet_key", value)


def test_key_is_generated_on_first_need_and_persisted(flux_env: Path) -> None:
    assert not (flux_env / "flux.toml").exists()
    token = crypto.encrypt("s3cret")
    key = _stored_key(flux_env)
    assert len(crypto.split_keys(key)) == 1
    # A new process (config read again) decrypts with the persisted key.
    reset_config()
    assert crypto.decrypt(token) == "s3cret"
    assert _stored_key(flux_env) == key  # not regenerated


def test_ensure_key_keeps_a_key_another_process_wrote(flux_env: Path) -> None:
    get_config()  # this process read the config before the key existed
    written = crypto.generate_key()
    (flux_env / "flux.toml").write_text(f'[core]\nfernet_key = "{written}"\n')
    assert crypto.ensure_key() == written
    assert _stored_key(flux_env) == written


def test_round_trip_unicode_and_token_hides_text() -> None:
    text = "pässwörd ✓ 密码 🚀"
    token = crypto.encrypt(text)
    assert text not in token and "p" + "ässw" not in token
    assert crypto.decrypt(token) == text
    assert crypto.encrypt(text) != token  # random IV: same text, different token


def test_wrong_key_is_one_clear_error() -> None:
    token = crypto.encrypt("s3cret")
    _use_key(crypto.generate_key())
    with pytest.raises(FernetKeyError, match="cannot decrypt a stored secret") as info:
        crypto.decrypt(token)
    assert "\n" not in str(info.value)
    assert "s3cret" not in str(info.value)


def test_garbage_token_is_a_fernet_key_error() -> None:
    crypto.ensure_key()
    with pytest.raises(FernetKeyError):
        crypto.decrypt("not-a-token")


def test_invalid_key_format_is_reported() -> None:
    _use_key("too-short")
    with pytest.raises(FernetKeyError, match="not a valid Fernet key"):
        crypto.encrypt("x")
    _use_key(f"{crypto.generate_key()},also-bad")
    with pytest.raises(FernetKeyError, match="key 2 of"):
        crypto.encrypt("x")


def test_empty_key_with_encrypted_data_does_not_invent_a_key(flux_env: Path) -> None:
    token = crypto.encrypt("x")
    _use_key("")
    with pytest.raises(FernetKeyError, match="fernet_key is empty"):
        crypto.decrypt(token)
    assert _stored_key(flux_env) == ""  # decrypting never generates a (useless) key


def test_multi_key_decrypts_old_tokens_and_rotate_moves_them_to_the_new_key() -> None:
    old = crypto.generate_key()
    _use_key(old)
    token = crypto.encrypt("s3cret")
    new = crypto.generate_key()
    _use_key(f"{new}, {old}")
    assert crypto.decrypt(token) == "s3cret"
    rotated = crypto.rotate_token(token)
    fresh = crypto.encrypt("y")
    _use_key(new)
    assert crypto.decrypt(rotated) == "s3cret"
    assert crypto.decrypt(fresh) == "y"  # encrypting used the first key
    with pytest.raises(FernetKeyError):
        crypto.decrypt(token)


def test_rotate_without_the_old_key_fails_clearly() -> None:
    token = crypto.encrypt("s3cret")
    _use_key(crypto.generate_key())
    with pytest.raises(FernetKeyError, match="none of the keys"):
        crypto.rotate_token(token)


def test_environment_key_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    token = crypto.encrypt("s3cret")
    monkeypatch.setenv(crypto.KEY_ENV, crypto.generate_key())
    reset_config()
    assert crypto.key_from_environment()
    with pytest.raises(FernetKeyError):
        crypto.decrypt(token)


@pytest.mark.parametrize(
    "name",
    ["password", "PASSWORD", "db_passwd", "pwd", "secret", "client-secret", "token", "access_token",
     "api_key", "apiKey", "API-KEY", "apikey", "private_key", "aws_access_key_id", "credentials",
     "service_account_credentials", "authorization", "passphrase", "connection_string"],
)
def test_secret_looking_keys(name: str) -> None:
    assert crypto.is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["charset", "timeout", "host", "ssl_mode", "region", "key_file_name", "local_infile", "cursor"]
)
def test_ordinary_keys_are_not_secret(name: str) -> None:
    assert not crypto.is_secret_key(name)

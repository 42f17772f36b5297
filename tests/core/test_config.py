"""Configuration: defaults, flux.toml, FLUX__SECTION__KEY and FLUX_DATABASE_URL."""

from pathlib import Path

import pytest

from flux.config import Config, get_config, reset_config
from flux.exceptions import ConfigError


def test_defaults_live_under_flux_home(flux_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUX_DATABASE_URL")
    config = Config()
    assert config.dags_folder == flux_env / "dags"
    assert config.log_folder == flux_env / "logs"
    assert config.database_url == f"sqlite:///{flux_env / 'flux.db'}"
    assert config.get("core", "executor") == "local"


def test_file_then_environment_precedence(flux_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (flux_env / "flux.toml").write_text('[core]\nparallelism = 7\nexecutor = "sequential"\n')
    assert Config().get("core", "parallelism") == 7
    monkeypatch.setenv("FLUX__CORE__PARALLELISM", "9")
    config = Config()
    assert config.get("core", "parallelism") == 9
    assert config.get("core", "executor") == "sequential"


def test_database_url_shortcut_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX_DATABASE_URL", "sqlite:////tmp/x.db")
    assert Config().database_url == "sqlite:////tmp/x.db"
    monkeypatch.setenv("FLUX__DATABASE__URL", "sqlite:////tmp/y.db")
    assert Config().database_url == "sqlite:////tmp/y.db"


def test_bad_values_are_clear_errors(flux_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUX__CORE__PARALLELISM", "many")
    with pytest.raises(ConfigError, match="FLUX__CORE__PARALLELISM: expected an integer"):
        Config()
    monkeypatch.delenv("FLUX__CORE__PARALLELISM")
    (flux_env / "flux.toml").write_text("[core\n")
    with pytest.raises(ConfigError, match="cannot read"):
        Config()


def test_set_persistent_keeps_other_keys(flux_env: Path) -> None:
    (flux_env / "flux.toml").write_text('[core]\nparallelism = 3\n')
    reset_config()
    get_config().set_persistent("core", "fernet_key", "abc")
    reset_config()
    config = get_config()
    assert config.get("core", "fernet_key") == "abc"
    assert config.get("core", "parallelism") == 3
    assert (flux_env / "flux.toml").stat().st_mode & 0o777 == 0o600


def test_pool_size_sets_the_server_connection_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from flux.db import dispose_all, get_engine

    url = "mysql+pymysql://root@127.0.0.1:3306/test"  # no connection is opened to build the pool
    monkeypatch.setenv("FLUX__DATABASE__POOL_SIZE", "3")
    reset_config()
    dispose_all()
    try:
        assert get_engine(url, migrate=False).pool.size() == 3
        dispose_all()
        monkeypatch.setenv("FLUX__DATABASE__POOL_SIZE", "0")
        reset_config()
        with pytest.raises(ConfigError, match=r"pool_size must be at least 1, not 0"):
            get_engine(url, migrate=False)
    finally:
        dispose_all()

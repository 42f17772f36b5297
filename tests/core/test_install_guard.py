"""The installed Flux distributions are this repository's, never the package index's namesakes.

The package index holds unrelated projects called ``flux-core`` and ``flux``. A plugin installed
alone (``pip install ./flux-mysql``) would pull that ``flux-core`` in to satisfy its dependency, and
the tests would then run against someone else's code. These tests fail loudly when that happens.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_FOLDERS = ("flux-bash", "flux-mysql", "flux-web")
FIX = "install it from this repository: python3 -m pip install ./flux-core ./flux-bash ..."


def _project(folder: str) -> dict:
    with open(REPO_ROOT / folder / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]


def _source_folder(dist: metadata.Distribution) -> Path:
    """The local folder ``dist`` was installed from, as recorded in its direct_url.json (PEP 610)."""
    raw = dist.read_text("direct_url.json")
    assert raw, f"{dist.metadata['Name']} was installed from a package index, not a local folder: {FIX}"
    info = json.loads(raw)
    url = urlparse(info["url"])
    assert url.scheme == "file" and "dir_info" in info, (
        f"{dist.metadata['Name']} was installed from {info['url']}, not from a folder: {FIX}"
    )
    return Path(unquote(url.path))


def _assert_from_this_repository(folder: str) -> metadata.Distribution:
    project = _project(folder)
    dist = metadata.distribution(project["name"])
    source = _source_folder(dist)
    assert source.resolve() == (REPO_ROOT / folder).resolve(), (
        f"{project['name']} was installed from {source}, not from this checkout's {folder}/"
    )
    assert Version(dist.version) == Version(project["version"]), (
        f"installed {project['name']} {dist.version} differs from {folder}/pyproject.toml's "
        f"{project['version']}: reinstall it"
    )
    return dist


def test_flux_core_is_this_repositorys() -> None:
    dist = _assert_from_this_repository("flux-core")
    assert dist.metadata["Summary"] == _project("flux-core")["description"]


def test_the_flux_package_is_flux_cores_own() -> None:
    import flux

    owners = set(metadata.packages_distributions().get("flux", []))
    assert owners == {"flux-core"}, f"import package 'flux' is provided by {sorted(owners)}"
    module = Path(flux.__file__).resolve()
    dist = metadata.distribution("flux-core")
    editable_source = REPO_ROOT / "flux-core" / "src" / "flux"
    installed = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or ()}
    assert module.is_relative_to(editable_source.resolve()) or module in installed, (
        f"'flux' is imported from {module}, which flux-core did not install"
    )


def test_core_registers_itself_as_a_plugin() -> None:
    core = [ep for ep in metadata.entry_points(group="flux") if ep.name == "core"]
    assert [(ep.value, ep.dist.name if ep.dist else None) for ep in core] == [
        ("flux.builtin.plugin", "flux-core")
    ]


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS)
def test_installed_plugins_are_this_repositorys(folder: str) -> None:
    project = _project(folder)
    try:
        metadata.distribution(project["name"])
    except metadata.PackageNotFoundError:
        pytest.skip(f"{project['name']} is not installed in this environment")
    dist = _assert_from_this_repository(folder)
    declared = project["entry-points"]["flux"]
    registered = {ep.name: ep.value for ep in dist.entry_points if ep.group == "flux"}
    assert registered == declared

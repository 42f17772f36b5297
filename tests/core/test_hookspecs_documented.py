"""Every hook of the plugin contract is documented, with an example, and exercised by a test.

Adding a hookspec to flux/hookspecs.py without a docstring example, a section in docs/hookspecs.md
and a test fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from flux import hookspecs

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT / "docs" / "hookspecs.md"
GUIDE = REPO_ROOT / "docs" / "plugins.md"
TESTS = REPO_ROOT / "tests"


def _hookspec_names() -> list[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(name for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, marker))


HOOKSPECS = _hookspec_names()


def test_the_contract_has_the_hooks_of_the_design() -> None:
    # Also proves the checks below are not vacuous (hookspecs are found by their marker).
    assert {
        "flux_commands", "flux_executors", "flux_hooks", "flux_macros", "flux_operators",
        "flux_task_instance_state_changed",
    } <= set(HOOKSPECS)


@pytest.mark.parametrize("name", HOOKSPECS)
def test_hookspec_docstring_has_an_example(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Example" in doc, f"{name}'s docstring has no 'Example'"
    assert f"def {name}(" in doc, f"{name}'s example does not implement {name}"


@pytest.mark.parametrize("name", HOOKSPECS)
def test_hookspec_has_a_section_in_the_reference(name: str) -> None:
    reference = REFERENCE.read_text()
    assert f"\n## `{name}`\n" in reference, f"docs/hookspecs.md has no '## `{name}`' section"
    section = reference.split(f"\n## `{name}`\n", 1)[1].split("\n## ", 1)[0]
    assert f"def {name}(" in section  # its signature, and an example implementing it
    assert "**Called**" in section and "Example" in section


def test_the_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = re.findall(r"^## `(flux_\w+)`$", REFERENCE.read_text(), flags=re.MULTILINE)
    assert sorted(documented) == HOOKSPECS


def test_the_guide_names_every_hook() -> None:
    guide = GUIDE.read_text()
    for name in HOOKSPECS:
        assert f"`{name}(" in guide, f"docs/plugins.md does not mention {name}"


@pytest.mark.parametrize("name", HOOKSPECS)
def test_hookspec_is_exercised_by_a_test(name: str) -> None:
    this = Path(__file__).resolve()
    users = [
        path for path in TESTS.rglob("test_*.py")
        if path.resolve() != this and re.search(rf"\b{name}\b", path.read_text())
    ]
    assert users, f"no test under tests/ mentions {name}"

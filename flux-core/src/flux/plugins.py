"""The plugin manager: finds plugins through entry points of group ``flux`` and collects their parts.

Core's own built-ins (``flux.builtin.plugin``) are found the same way, through flux-core's own
entry point. Use :func:`get_plugin_manager`; never call ``pm.hook`` directly from outside this module.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from importlib import metadata as importlib_metadata
from typing import Any

import pluggy

from flux import hookspecs
from flux.exceptions import MissingPluginError, PluginConflictError, PluginError

ENTRY_POINT_GROUP = "flux"
DISABLED_ENV = "FLUX_DISABLED_PLUGINS"

# Names users import from the seed's paths, and which distribution provides each. Only used to
# turn "no plugin provides X" into an actionable message.
KNOWN_PROVIDERS: dict[str, str] = {
    "BashOperator": "flux-bash",
    "BashSensor": "flux-bash",
    "MySqlHook": "flux-mysql",
    "MySqlOperator": "flux-mysql",
    "MySqlSensor": "flux-mysql",
    "MySqlToMySqlOperator": "flux-mysql",
    "MySqlToCsvOperator": "flux-mysql",
    "CsvToMySqlOperator": "flux-mysql",
    "CeleryExecutor": "flux-celery",
}

#: kind -> (hook name, how a contribution is keyed)
KINDS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "hooks": ("flux_hooks", lambda cls: cls.conn_type),
    "operators": ("flux_operators", lambda cls: cls.__name__),
    "executors": ("flux_executors", lambda cls: cls.executor_name),
    "commands": ("flux_commands", lambda cmd: cmd.name),
    "macros": ("flux_macros", lambda item: item[0]),
}


@dataclass
class PluginInfo:
    """One discovered plugin: its entry-point name, distribution and load outcome."""

    name: str
    module: str
    distribution: str
    version: str
    status: str = "loaded"  # loaded | disabled | error
    error: str | None = None


@dataclass
class Contribution:
    """One thing a plugin registered (an operator class, a command...)."""

    kind: str
    name: str
    obj: Any
    plugin: PluginInfo


@dataclass
class _Registry:
    by_kind: dict[str, dict[str, Contribution]] = field(default_factory=dict)


def disabled_plugin_names(environ: Any = None) -> set[str]:
    """The plugin names listed in ``FLUX_DISABLED_PLUGINS`` (comma separated)."""
    raw = (os.environ if environ is None else environ).get(DISABLED_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


class FluxPluginManager:
    """Loads every plugin once and answers "which class is operator X" and similar questions."""

    def __init__(self, entry_points: Iterable[importlib_metadata.EntryPoint] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registry = _Registry()
        self._lock = threading.RLock()
        if entry_points is None:
            entry_points = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
        disabled = disabled_plugin_names()
        for entry_point in entry_points:
            self._load(entry_point, disabled)

    # --- loading -------------------------------------------------------------------------------

    def _load(self, entry_point: importlib_metadata.EntryPoint, disabled: set[str]) -> None:
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
        )
        if info.name in self.plugins:
            other = self.plugins[info.name]
            info.status, info.error = "error", (
                f"plugin name {info.name!r} is also used by {other.distribution}"
            )
            self.plugins[f"{info.name} ({info.distribution})"] = info
            return
        self.plugins[info.name] = info
        if info.name in disabled:
            info.status = "disabled"
            return
        try:
            module = entry_point.load()
            self.register(module, info)
        except Exception as exc:  # a broken plugin must never break Flux itself
            info.status, info.error = "error", f"{type(exc).__name__}: {exc}"
            print(f"flux: plugin {info.name!r} ({info.distribution}) failed to load: {info.error}",
                  file=sys.stderr)

    def register(self, module: object, info: PluginInfo) -> None:
        """Register a plugin object (a module or any object with ``@hookimpl`` methods)."""
        with self._lock:
            self.pm.register(module, name=info.name)
            unknown = self._unknown_hooks(info.name)
            if unknown:
                self.pm.unregister(name=info.name)
                raise PluginError(
                    f"unknown hook {', '.join(unknown)} (misspelled?); "
                    f"known hooks: {', '.join(self.hook_names())}"
                )
            self.plugins[info.name] = info
            self._registry = _Registry()

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests register throwaway plugins and remove them afterwards)."""
        with self._lock:
            self.pm.unregister(name=name)
            self.plugins.pop(name, None)
            self._registry = _Registry()

    def add_hookspecs(self, module: object) -> None:
        """Let a plugin extend the contract with hooks of its own (flux-web's pages, for example)."""
        self.pm.add_hookspecs(module)

    def hook_names(self) -> list[str]:
        return sorted(name for name in dir(self.pm.hook) if name.startswith("flux_"))

    def _unknown_hooks(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        unknown = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                unknown.append(caller.name)
        return sorted(unknown)

    def check_pending(self) -> None:
        """Raise :class:`PluginError` if any registered hook implementation has no hookspec."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from None

    # --- collecting contributions ----------------------------------------------------------------

    def _impls(self, hook_name: str) -> list[Any]:
        caller = getattr(self.pm.hook, hook_name)
        # pluggy calls the last registered first; keep discovery order for stable listings.
        return list(reversed(caller.get_hookimpls()))

    def contributions(self, kind: str) -> dict[str, Contribution]:
        """Every contribution of one kind (``operators``, ``hooks``...), keyed by name."""
        with self._lock:
            cached = self._registry.by_kind.get(kind)
            if cached is not None:
                return cached
            hook_name, key_of = KINDS[kind]
            found: dict[str, Contribution] = {}
            for impl in self._impls(hook_name):
                info = self.plugins[impl.plugin_name]
                try:
                    result = impl.function()
                except Exception as exc:
                    raise PluginError(
                        f"plugin {info.name!r} ({info.distribution}) failed in {hook_name}: {exc}"
                    ) from exc
                items = result.items() if kind == "macros" else (result or [])
                for item in items:
                    name = key_of(item)
                    obj = item[1] if kind == "macros" else item
                    previous = found.get(name)
                    if previous is not None and previous.obj is not obj:
                        raise PluginConflictError(
                            f"{kind[:-1]} {name!r} is registered by both {previous.plugin.distribution} "
                            f"(plugin {previous.plugin.name!r}) and {info.distribution} "
                            f"(plugin {info.name!r}); uninstall one or disable it with "
                            f"{DISABLED_ENV}={info.name}"
                        )
                    found[name] = Contribution(kind, name, obj, info)
            self._registry.by_kind[kind] = found
            return found

    def get(self, kind: str, name: str) -> Any:
        """The object registered under ``name``, or ``MissingPluginError`` saying what to install."""
        contribution = self.contributions(kind).get(name)
        if contribution is None:
            raise missing(kind, name, sorted(self.contributions(kind)))
        return contribution.obj

    def by_class_name(self, kind: str, name: str) -> Any | None:
        """A registered class by its class name (hooks and executors are keyed otherwise)."""
        for contribution in self.contributions(kind).values():
            if getattr(contribution.obj, "__name__", None) == name:
                return contribution.obj
        return None

    def operators(self) -> dict[str, type]:
        return {name: c.obj for name, c in self.contributions("operators").items()}

    def hooks(self) -> dict[str, type]:
        return {name: c.obj for name, c in self.contributions("hooks").items()}

    def executors(self) -> dict[str, type]:
        return {name: c.obj for name, c in self.contributions("executors").items()}

    def commands(self) -> dict[str, Any]:
        return {name: c.obj for name, c in self.contributions("commands").items()}

    def macros(self) -> dict[str, Any]:
        return {name: c.obj for name, c in self.contributions("macros").items()}

    def call_listeners(self, hook_name: str, **kwargs: Any) -> None:
        """Call a listener hook on every plugin; a failing listener is logged, never raised."""
        import logging

        for impl in self._impls(hook_name):
            try:
                impl.function(**kwargs)
            except Exception:
                logging.getLogger(__name__).exception(
                    "listener %s of plugin %r failed", hook_name, impl.plugin_name
                )

    @property
    def hook(self) -> Any:
        """Pluggy's hook relay, for plugin-defined hooks (``flux_web_blueprints``...)."""
        return self.pm.hook

    # --- listing ---------------------------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """What ``flux plugins`` shows: every plugin with what it contributes, by kind."""
        rows = []
        for info in self.plugins.values():
            row: dict[str, Any] = {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
                "status": info.status,
                "error": info.error,
            }
            for kind in KINDS:
                row[kind] = []
            rows.append(row)
        by_name = {row["name"]: row for row in rows}
        for kind in KINDS:
            try:
                contributions = self.contributions(kind)
            except PluginError as exc:
                for row in rows:
                    row.setdefault("problems", []).append(str(exc))
                continue
            for contribution in contributions.values():
                by_name[contribution.plugin.name][kind].append(contribution.name)
        return rows


def missing(kind: str, name: str, available: list[str]) -> MissingPluginError:
    """The error for a name no installed plugin provides, naming the distribution to install."""
    dist = KNOWN_PROVIDERS.get(name)
    if dist:
        return MissingPluginError(f"{name} is provided by {dist}: pip install {dist}")
    listed = ", ".join(available) or "none"
    return MissingPluginError(f"no installed plugin provides {kind[:-1]} {name!r} (available: {listed})")


_manager: FluxPluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> FluxPluginManager:
    """The process-wide plugin manager, created (and every plugin loaded) on first use."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = FluxPluginManager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests change FLUX_DISABLED_PLUGINS between cases)."""
    global _manager
    _manager = None


def resolve_attribute(namespace: str, kind: str, name: str, core_names: dict[str, str]) -> Any:
    """Module ``__getattr__`` of ``flux.hooks``/``flux.operators``/``flux.executors`` (PEP 562).

    ``core_names`` maps names the namespace always has to the module defining them.
    """
    if name.startswith("__"):
        raise AttributeError(f"module {namespace!r} has no attribute {name!r}")
    if name in core_names:
        return getattr(import_module(core_names[name]), name)
    manager = get_plugin_manager()
    if kind == "operators":
        found = manager.contributions(kind).get(name)
        obj = found.obj if found else None
    else:
        obj = manager.by_class_name(kind, name)
    if obj is not None:
        return obj
    if name in KNOWN_PROVIDERS:
        raise missing(kind, name, [])
    raise AttributeError(
        f"module {namespace!r} has no attribute {name!r}; "
        f"installed {kind}: {', '.join(sorted(_class_names(manager, kind))) or 'none'}"
    )


def _class_names(manager: FluxPluginManager, kind: str) -> list[str]:
    return [getattr(c.obj, "__name__", c.name) for c in manager.contributions(kind).values()]

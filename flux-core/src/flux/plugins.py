"""The plugin manager: finds plugins through entry points of group ``flux`` and collects their parts.

Core's own built-ins (``flux.builtin.plugin``) are found the same way, through flux-core's own
entry point. Use :func:`get_plugin_manager`; never call ``pm.hook`` directly from outside this module.

A broken plugin never breaks Flux itself: a plugin whose module fails to import, that implements a
hook no hookspec defines (a misspelling such as ``flux_operator``), or whose hook raises is marked
``error`` (``flux plugins`` shows why) and a warning is logged; the other plugins keep working.
Two plugins claiming one name are an error that names both distributions.
"""

from __future__ import annotations

import os
import threading
import types
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
class _Collected:
    """The contributions of one kind, and the name clashes found while collecting them."""

    found: dict[str, Contribution] = field(default_factory=dict)
    conflicts: list[tuple[Contribution, Contribution]] = field(default_factory=list)


def disabled_plugin_names(environ: Any = None) -> set[str]:
    """The plugin names listed in ``FLUX_DISABLED_PLUGINS`` (comma separated)."""
    raw = (os.environ if environ is None else environ).get(DISABLED_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _normalize(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def _warn(message: str) -> None:
    import logging  # only when something is wrong: `flux --help` does not pay for it

    logging.getLogger(__name__).warning("flux: %s", message)


def _conflict_error(kind: str, first: Contribution, second: Contribution) -> PluginConflictError:
    return PluginConflictError(
        f"{kind[:-1]} {first.name!r} is registered by both {first.plugin.distribution} "
        f"(plugin {first.plugin.name!r}) and {second.plugin.distribution} "
        f"(plugin {second.plugin.name!r}); uninstall one or disable it with "
        f"{DISABLED_ENV}={second.plugin.name}"
    )


class FluxPluginManager:
    """Loads every plugin once and answers "which class is operator X" and similar questions."""

    def __init__(self, entry_points: Iterable[importlib_metadata.EntryPoint] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._objects: dict[str, object] = {}  # plugin name -> its module, kept to re-register
        self._unknown: dict[str, list[str]] = {}  # plugin name -> hooks without a hookspec
        self._collected: dict[str, _Collected] = {}
        self._lock = threading.RLock()
        if entry_points is None:
            entry_points = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
        disabled = disabled_plugin_names()
        for entry_point in entry_points:
            self._load(entry_point, disabled)
        # Validated only once all are loaded: a plugin may implement a hookspec that another
        # plugin, loaded later, declares (flux-web's, for instance).
        for name in list(self._objects):
            self._validate(name)

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
                f"plugin name {info.name!r} is used by both {other.distribution} and "
                f"{info.distribution}; only the one from {other.distribution} was loaded"
            )
            self.plugins[f"{info.name} ({info.distribution})"] = info
            _warn(info.error)
            return
        self.plugins[info.name] = info
        if info.name in disabled:
            info.status = "disabled"
            return
        try:
            module = entry_point.load()
            self._register(module, info)
        except Exception as exc:  # a broken plugin must never break Flux itself
            self._fail(info, f"{type(exc).__name__}: {exc}")

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status, info.error = "error", error
        _warn(f"plugin {info.name!r} ({info.distribution}) is broken: {error}")

    def _register(self, obj: object, info: PluginInfo) -> None:
        with self._lock:
            self._add_declared_hookspecs(obj)
            self.pm.register(obj, name=info.name)
            self.plugins[info.name] = info
            self._objects[info.name] = obj
            self._collected.clear()

    def _add_declared_hookspecs(self, obj: object) -> None:
        """Add the new hookspecs a plugin module declares (with ``flux.hookspecs.hookspec``)."""
        new = {}
        for name in dir(obj):
            if not name.startswith("flux_"):
                continue
            caller = getattr(self.pm.hook, name, None)
            if (caller is None or caller.spec is None) and self.pm.parse_hookspec_opts(obj, name):
                new[name] = getattr(obj, name)
        if new:
            self.pm.add_hookspecs(types.SimpleNamespace(**new))

    def _unknown_hooks(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        unknown = set()
        for caller in self.pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                impls = [i for i in caller.get_hookimpls() if i.plugin_name == plugin_name]
                if any(not impl.optionalhook for impl in impls):
                    unknown.add(caller.name)
        return sorted(unknown)

    def _validate(self, name: str) -> PluginError | None:
        """Reject a registered plugin that implements hooks no hookspec defines."""
        unknown = self._unknown_hooks(name)
        if not unknown:
            self._unknown.pop(name, None)
            return None
        info = self.plugins[name]
        self.pm.unregister(name=name)
        self._unknown[name] = unknown
        self._collected.clear()
        plural = "s" if len(unknown) > 1 else ""
        self._fail(info, f"unknown hook{plural} {', '.join(unknown)} (misspelled?); "
                         f"known hooks: {', '.join(self.hook_names())}")
        return PluginError(f"plugin {name!r} ({info.distribution}): {info.error}")

    def register(self, module: object, info: PluginInfo) -> None:
        """Register a plugin object (a module or any object with ``@hookimpl`` methods).

        Raises :class:`PluginError` (and marks the plugin ``error``) if it implements a hook no
        hookspec defines or a hook with the wrong arguments.
        """
        with self._lock:
            if self.pm.get_plugin(info.name) is not None:
                taken = self.plugins[info.name].distribution
                raise PluginError(f"plugin name {info.name!r} is already used by {taken}")
            try:
                self._register(module, info)
            except ValueError as exc:  # the same object registered twice under two names
                raise PluginError(f"plugin {info.name!r} ({info.distribution}): {exc}") from None
            except pluggy.PluginValidationError as exc:  # a hook with the wrong arguments
                self.plugins[info.name] = info
                self._fail(info, str(exc))
                raise PluginError(f"plugin {info.name!r} ({info.distribution}): {exc}") from None
            error = self._validate(info.name)
            if error is not None:
                raise error
            info.status, info.error = "loaded", None

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests register throwaway plugins and remove them afterwards)."""
        with self._lock:
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self.plugins.pop(name, None)
            self._objects.pop(name, None)
            self._unknown.pop(name, None)
            self._collected.clear()

    def add_hookspecs(self, module: object) -> None:
        """Let a plugin extend the contract with hooks of its own (flux-web's pages, for example).

        Plugins rejected only because they implemented these hooks before they existed are
        registered again.
        """
        with self._lock:
            self.pm.add_hookspecs(module)
            for name, hooks in list(self._unknown.items()):
                if all(hook in self.hook_names() for hook in hooks):
                    try:
                        self.pm.register(self._objects[name], name=name)
                    except pluggy.PluginValidationError as exc:
                        self._fail(self.plugins[name], str(exc))
                        continue
                    if self._validate(name) is None:
                        self.plugins[name].status, self.plugins[name].error = "loaded", None
            self._collected.clear()

    def hook_names(self) -> list[str]:
        """Every hook the contract defines (core's hookspecs and those plugins added)."""
        return sorted(
            name for name, caller in vars(self.pm.hook).items()
            if name.startswith("flux_") and caller.spec is not None
        )

    def check_pending(self) -> None:
        """Raise :class:`PluginError` if a plugin implements a hook that no hookspec defines.

        Plugin authors call this in their tests to catch a misspelled ``@hookimpl``.
        """
        with self._lock:
            if self._unknown:
                raise PluginError("; ".join(
                    f"plugin {name!r} ({self.plugins[name].distribution}) implements unknown "
                    f"hook {', '.join(hooks)}"
                    for name, hooks in sorted(self._unknown.items())
                ))
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise PluginError(str(exc)) from None

    # --- collecting contributions ----------------------------------------------------------------

    def _impls(self, hook_name: str) -> list[Any]:
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None:
            return []
        # Registration (discovery) order, so the plugin found first owns a contested name; pluggy
        # would call them in the reverse order.
        return list(caller.get_hookimpls())

    def _collect(self, kind: str) -> _Collected:
        """Call every plugin's hook of ``kind`` once; a hook that raises marks its plugin broken."""
        with self._lock:
            cached = self._collected.get(kind)
            if cached is not None:
                return cached
            hook_name, key_of = KINDS[kind]
            collected = _Collected()
            for impl in self._impls(hook_name):
                info = self.plugins[impl.plugin_name]
                try:
                    result = impl.function()
                    items = list(result.items() if kind == "macros" else (result or []))
                    keyed = [(key_of(item), item[1] if kind == "macros" else item) for item in items]
                except Exception as exc:
                    self._fail(info, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                    continue
                for name, obj in keyed:
                    contribution = Contribution(kind, name, obj, info)
                    previous = collected.found.get(name)
                    if previous is None:
                        collected.found[name] = contribution
                    elif previous.obj is not obj:  # one class re-exported by two plugins is fine
                        collected.conflicts.append((previous, contribution))
            self._collected[kind] = collected
            return collected

    def contributions(self, kind: str) -> dict[str, Contribution]:
        """Every contribution of one kind (``operators``, ``hooks``...), keyed by name.

        Raises :class:`PluginConflictError`, naming both distributions, if two plugins register
        one name.
        """
        collected = self._collect(kind)
        if collected.conflicts:
            raise _conflict_error(kind, *collected.conflicts[0])
        return collected.found

    def contributions_and_conflicts(
        self, kind: str
    ) -> tuple[dict[str, Contribution], list[PluginConflictError]]:
        """Like :meth:`contributions`, but never raises: for callers that must keep working.

        A name two plugins claim is left out (which one to use is ambiguous) and its conflict
        returned, so ``flux`` can still offer every other command and say what to fix.
        """
        collected = self._collect(kind)
        contested = {first.name for first, _ in collected.conflicts}
        usable = {name: c for name, c in collected.found.items() if name not in contested}
        return usable, [_conflict_error(kind, *pair) for pair in collected.conflicts]

    def get(self, kind: str, name: str) -> Any:
        """The object registered under ``name``, or ``MissingPluginError`` saying what to install."""
        contribution = self.contributions(kind).get(name)
        if contribution is None:
            raise missing(kind, name, sorted(self.contributions(kind)), self.plugins.values())
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
                # Like pluggy, pass only the arguments an implementation names (a subset is fine).
                impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception:
                logging.getLogger(__name__).exception(
                    "listener %s of plugin %r failed", hook_name, impl.plugin_name
                )

    def remote_task_log(self, ti: Any, try_number: int, offset: int) -> hookspecs.RemoteTaskLog | None:
        """The first plugin's answer to ``flux_remote_task_log``, or None if no plugin has the log.

        A failing implementation, or one returning something that is not ``(text, next_offset)``,
        is logged and skipped, so one broken plugin never breaks the log page.
        """
        import logging

        args = {"ti": ti, "try_number": try_number, "offset": offset}
        for impl in reversed(self._impls("flux_remote_task_log")):  # pluggy's calling order
            try:
                result = impl.function(*(args[name] for name in impl.argnames))
                if result is None:
                    continue
                text, next_offset = result
                if not isinstance(text, str) or not isinstance(next_offset, int):
                    raise TypeError(f"expected (str, int), got {result!r:.100}")
                return hookspecs.RemoteTaskLog(text, next_offset)
            except Exception:
                logging.getLogger(__name__).exception(
                    "flux_remote_task_log of plugin %r failed", impl.plugin_name
                )
        return None

    @property
    def hook(self) -> Any:
        """Pluggy's hook relay, for plugin-defined hooks (``flux_web_blueprints``...)."""
        return self.pm.hook

    # --- listing ---------------------------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        """What ``flux plugins`` shows: every plugin with what it contributes, by kind.

        Never raises: a name claimed by two plugins is listed under both, and each of their rows
        gets the conflict in ``problems``.
        """
        collected = {kind: self._collect(kind) for kind in KINDS}  # may mark plugins broken
        rows: dict[int, dict[str, Any]] = {}
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
            row["problems"] = []
            rows[id(info)] = row
        for kind, found in collected.items():
            for contribution in found.found.values():
                rows[id(contribution.plugin)][kind].append(contribution.name)
            for first, second in found.conflicts:
                rows[id(second.plugin)][kind].append(second.name)
                message = str(_conflict_error(kind, first, second))
                for info in (first.plugin, second.plugin):
                    if message not in rows[id(info)]["problems"]:
                        rows[id(info)]["problems"].append(message)
        for row in rows.values():
            for kind in KINDS:
                row[kind].sort()
        return list(rows.values())


def missing(
    kind: str, name: str, available: list[str], plugins: Iterable[PluginInfo] = ()
) -> MissingPluginError:
    """The error for a name no installed plugin provides, naming the distribution to install.

    ``plugins`` (the discovered ones) lets the message say when the providing distribution is
    installed but its plugin is disabled or broken, instead of asking to install it again.
    """
    plugins = list(plugins)
    dist = KNOWN_PROVIDERS.get(name)
    if dist:
        for info in plugins:
            if _normalize(info.distribution) == dist and info.status != "loaded":
                state = (f"is disabled by {DISABLED_ENV}" if info.status == "disabled"
                         else f"failed to load: {info.error}")
                return MissingPluginError(f"{name} is provided by {dist}, whose plugin {info.name!r} {state}")
        return MissingPluginError(f"{name} is provided by {dist}: pip install {dist}")
    listed = ", ".join(available) or "none"
    message = f"no installed plugin provides {kind[:-1]} {name!r} (available: {listed})"
    broken = [f"{info.name} ({info.distribution})" for info in plugins if info.status == "error"]
    if broken:
        message += f"; plugins that failed to load (see 'flux plugins'): {', '.join(broken)}"
    return MissingPluginError(message)


_manager: FluxPluginManager | None = None
_manager_lock = threading.RLock()
_building = False


def get_plugin_manager() -> FluxPluginManager:
    """The process-wide plugin manager, created (and every plugin loaded) on first use."""
    global _manager, _building
    if _manager is None:
        with _manager_lock:  # re-entrant: a plugin calling this while being imported gets an error
            if _building:
                raise PluginError(
                    "get_plugin_manager() was called while plugins were being loaded; a plugin "
                    "module must not use it at import time (call it inside a function instead)"
                )
            if _manager is None:
                _building = True
                try:
                    _manager = FluxPluginManager()
                finally:
                    _building = False
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
        raise missing(kind, name, [], manager.plugins.values())
    unavailable = [f"{info.name} ({info.distribution}, {info.status})"
                   for info in manager.plugins.values() if info.status != "loaded"]
    raise AttributeError(
        f"module {namespace!r} has no attribute {name!r}; "
        f"installed {kind}: {', '.join(sorted(_class_names(manager, kind))) or 'none'}"
        + (f"; plugins not loaded (see 'flux plugins'): {', '.join(unavailable)}" if unavailable else "")
    )


def _class_names(manager: FluxPluginManager, kind: str) -> list[str]:
    return [getattr(c.obj, "__name__", c.name) for c in manager.contributions(kind).values()]

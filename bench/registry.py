"""Lazy plugin registries: a sorted literal mapping of names to dotted paths.

Nothing is imported until a plugin is asked for, so a missing optional library only
matters for the plugins that need it, and the error names what to install. Outside
packages add plugins through an entry-point group (``iotbench.codecs``,
``iotbench.transports``, ``iotbench.compressions``) whose value is the dotted path of a
module or class.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

__all__ = ["Plugin", "Registry", "UnknownPlugin", "PluginUnavailable"]


class UnknownPlugin(LookupError):
    """A name that no registry entry has."""


class PluginUnavailable(ImportError):
    """A registered plugin whose library is not installed here."""


@dataclass(frozen=True)
class Plugin:
    """Where a plugin lives and what to install when it cannot be imported."""

    path: str  # "package.module" or "package.module:attribute"
    install: str  # the hint, e.g. "pip install 'iotbench[avro]'"


class Registry:
    """Name -> plugin, loaded on first use.

    >>> reg = Registry("codec", {"json": Plugin("iotbench.codecs.json_codec", "")}, "")
    >>> reg.load("json").name
    'json'
    """

    def __init__(self, kind: str, builtins: dict[str, Plugin], group: str) -> None:
        self.kind = kind
        self._builtins = builtins
        self._group = group
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, path: str, install: str = "") -> None:
        """Add a plugin at run time (tests, notebooks); packages use the entry-point group."""
        self._builtins = {**self._builtins, name: Plugin(path, install)}
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._builtins = {k: v for k, v in self._builtins.items() if k != name}
        self._loaded.pop(name, None)

    def _entries(self) -> dict[str, Plugin]:
        entries = dict(self._builtins)
        if self._group:
            for ep in entries_for(self._group):
                entries.setdefault(ep.name, Plugin(ep.value, f"reinstall the package that provides {ep.value}"))
        return dict(sorted(entries.items()))

    def names(self) -> list[str]:
        return list(self._entries())

    def plugin(self, name: str) -> Plugin:
        entries = self._entries()
        if name not in entries:
            close = difflib.get_close_matches(name, entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownPlugin(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(entries)})")
        return entries[name]

    def load(self, name: str) -> Any:
        """The plugin object (a module or a class), imported on first use."""
        if name in self._loaded:
            return self._loaded[name]
        plugin = self.plugin(name)
        module_path, _, attribute = plugin.path.partition(":")
        try:
            obj: Any = importlib.import_module(module_path)
        except ImportError as exc:
            raise PluginUnavailable(f"{self.kind} {name!r} needs {exc.name or exc}: {plugin.install}") from exc
        if attribute:
            obj = getattr(obj, attribute)
        self._loaded[name] = obj
        return obj

    def status(self, name: str) -> tuple[bool, str]:
        """(usable here, why not / what to install)."""
        try:
            self.load(name)
        except PluginUnavailable as exc:
            return False, str(exc)
        return True, ""


def entries_for(group: str) -> list[Any]:
    return list(entry_points(group=group))

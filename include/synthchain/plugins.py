"""Which third-party generators a spec may name, decided before anything is imported.

A spec is data that whoever can edit the spec folder writes; the scheduler and the
workers import what it names. An open `module:attr` would let a spec import any
module on the worker (`os:system`, `this`, a module with import side effects), so
third-party generators must be registered by whoever installs the workers:

- as a Python entry point in the group `synthchain.generators` of an installed
  distribution (the spec names the entry point, e.g. `name: gmm`), or
- by import path in the allow-list `SYNTHCHAIN_ALLOWED_GENERATORS`
  (comma-separated `package.module:Class`).

Only the names checked here reach `importlib`; reading entry points never imports them.
Import-light (stdlib only): spec validation calls it at DAG-parse time.
"""
from __future__ import annotations

import os
from importlib.metadata import EntryPoint, entry_points



class GeneratorNotAllowed(ValueError):
    """A spec names a generator that is neither built in nor registered; nothing was imported."""

ENTRY_POINT_GROUP = "synthchain.generators"
ALLOW_LIST_ENV = "SYNTHCHAIN_ALLOWED_GENERATORS"


def registered_entry_points() -> dict[str, EntryPoint]:
    """Entry point name -> entry point, from installed distributions (metadata only, nothing imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def allowed_import_paths() -> set[str]:
    return {p.strip() for p in os.environ.get(ALLOW_LIST_ENV, "").split(",") if p.strip()}


def check_registered(name: str, builtin: set[str] | frozenset[str]) -> None:
    """GeneratorNotAllowed unless `name` is a built-in, a registered entry point or an allowed import path."""
    if name in builtin or name in registered_entry_points():
        return
    if ":" in name and name in allowed_import_paths() | {ep.value for ep in registered_entry_points().values()}:
        return
    registered = sorted(registered_entry_points())
    hint = (f"built-ins are {sorted(builtin)}" + (f"; registered: {registered}" if registered else "")
            + f". A third-party generator is registered as an entry point in the {ENTRY_POINT_GROUP!r} group "
            f"or listed by import path in {ALLOW_LIST_ENV}")
    if ":" in name:
        raise GeneratorNotAllowed(f"generator {name!r} is not registered, so it is not imported: {hint}")
    raise GeneratorNotAllowed(f"unknown generator {name!r}: {hint}")


def load_registered(name: str) -> object:
    """The object a registered name or allowed import path points to (call only after `check_registered`)."""
    import importlib

    ep = registered_entry_points().get(name)
    try:
        if ep is not None:
            return ep.load()
        module_name, _, attr = name.partition(":")
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeneratorNotAllowed(f"generator {name!r} is registered but cannot be imported: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a plug-in whose import itself fails: name it, no traceback
        raise GeneratorNotAllowed(f"generator {name!r} failed while being imported: {type(exc).__name__}: {exc}") from None

"""Families defined outside the package: ``"module:attribute"`` or ``"path/to/file.py:attribute"``.

A researcher's own family runs without editing rfsim: the experiment names it by where it
lives, and :func:`rfsim.models.get_model` loads it.

* ``"my_module:family"``: ``my_module`` is imported (it must be on ``sys.path``).
* ``"path/to/file.py:family"``: the file is executed as a module, once per process; a
  relative path is taken from ``base`` -- the experiment file's directory when the
  experiment came from a file -- else from the current directory.

``family`` is a :class:`~rfsim.models.Model` (what :func:`rfsim.models.register` returns),
or any object with ``config``, ``simulate`` and ``metrics`` attributes and optionally
``predict``, ``init``, ``axes``, ``coords``, ``memory``, ``predict_jit``, ``predicts``,
``description`` (a module itself qualifies): it is registered with those.  Either way the
family is registered under the name as written (``"family.py:toy"``), which is the name
the tables and ``[per_model.<name>]`` use.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

SYNTAX = ("a family from outside rfsim is named 'module:attribute' (an importable module) "
          "or 'path/to/file.py:attribute' (relative to the experiment file's directory)")
_OPTIONAL = ("predict", "init", "axes", "coords", "memory", "predict_jit", "predicts",
             "description")


def is_external(name: str) -> bool:
    """Does ``name`` have the ``where:attribute`` form (registry names have no colon)?"""
    return isinstance(name, str) and ":" in name


def load(name: str, *, base: str | Path | None = None):
    """The object ``name`` points to (not yet checked to be a family), or ValueError."""
    where, _, attr = name.rpartition(":")
    if not where or not attr.isidentifier():
        raise ValueError(f"model {name!r}: {SYNTAX}; got an empty or invalid part")
    module = _load_file(name, where, base) if _is_path(where) else _import(name, where)
    if not hasattr(module, attr):
        from rfsim.models import Model
        from rfsim.validation import closest

        found = sorted(k for k, v in vars(module).items() if isinstance(v, Model))
        have = f"; its families: {', '.join(found)}" if found else ""
        raise ValueError(f"model {name!r}: {where} has no attribute {attr!r}"
                         f"{closest(attr, found)}{have}")
    return getattr(module, attr)


def as_model(name: str, obj):
    """``obj`` as a registered :class:`~rfsim.models.Model` named ``name``, or ValueError."""
    import dataclasses

    from rfsim.models import _REGISTRY, Model, register

    if isinstance(obj, Model):
        _REGISTRY[name] = dataclasses.replace(obj, name=name)
        return _REGISTRY[name]
    missing = [k for k in ("config", "simulate", "metrics") if not hasattr(obj, k)]
    if missing or not dataclasses.is_dataclass(obj.config) or not callable(obj.simulate):
        what = f"it lacks {', '.join(missing)}" if missing else \
            "its config must be a @model_config class and its simulate callable"
        raise ValueError(f"model {name!r}: {type(obj).__name__} {_short(obj)} is not a family "
                         f"({what}): give a Model returned by rfsim.models.register(...) or "
                         "an object with config, simulate and metrics")
    options = {k: getattr(obj, k) for k in _OPTIONAL if getattr(obj, k, None) is not None}
    return register(name, obj.config, obj.simulate, metrics=obj.metrics, **options)


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _import(name: str, module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ValueError(f"model {name!r}: no module named {module!r} on the import path "
                             f"(sys.path); {SYNTAX}") from None
        raise


def _load_file(name: str, where: str, base: str | Path | None):
    path = Path(where).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else Path.cwd()) / path
    path = path.resolve()
    if not path.is_file():
        origin = "the experiment file's directory" if base is not None else \
            "the current directory"
        raise ValueError(f"model {name!r}: no file {str(path)!r} (a relative path is taken "
                         f"from {origin}); {SYNTAX}")
    module_name = "rfsim_family_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if module_name in sys.modules:  # once per process: its jitted programs are reused
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses resolve annotations through it
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    return module

"""One way to read settings: dataclasses with defaults, structured by one cattrs converter.

The project configuration (:mod:`storytransformer.config`), the estimate table, the daemon's
``daemon.toml`` and the editor's settings (the language server's options) are each a tree of
dataclasses. :func:`structure` turns a TOML or JSON table into that tree, the job cattrs does for
jedi-language-server, and turns every failure into one sentence naming the key and the file, so a
typo never silently turns something off. Bounds and choices are declared on the field
(:func:`setting`), not in a separate table, so a new setting carries its own limits.

Why our own hooks on top of cattrs: TOML and JSON need strictness cattrs leaves to us (``true`` is not
an integer, a string is not a list of characters, ``nan`` is not a threshold), and the messages must
say what a user should write, in the words of the file (``tool.storytransformer.similarity.top_k``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Callable

from functools import cache

__all__ = ["converter", "setting", "structure", "structure_leniently", "check_fields", "limit_problem"]


class _Wrong(Exception):
    """A value of the wrong shape; ``expected`` says what it must be."""

    def __init__(self, expected: str, value: Any, show_value: bool = True) -> None:
        super().__init__(expected)
        self.expected, self.value, self.show_value = expected, value, show_value


class _Unknown(Exception):
    def __init__(self, key: str, known: list[str], removed: str = "") -> None:
        super().__init__(key)
        self.key, self.known, self.removed = key, known, removed


class _Missing(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            low: float | None = None, high: float | None = None, above: float | None = None,
            choices: tuple | None = None, expected: str | None = None, max_items: int | None = None,
            pattern: typing.Pattern | None = None, key: bool = True, compare: bool = True) -> Any:
    """A dataclass field with its limits: inclusive ``low``..``high``, exclusive ``above``, allowed ``choices``,
    the words for its type in a message (``expected``), ``max_items`` for a list, a regex ``pattern`` a non-empty
    string must match; ``key=False``: not read from
    files (filled in by the loader)."""
    meta = {k: v for k, v in (("low", low), ("high", high), ("above", above), ("choices", choices),
                              ("expected", expected), ("max_items", max_items),
                              ("pattern", pattern)) if v is not None}
    if not key:
        meta["key"] = False
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta, compare=compare)


def _keys(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("key", True)}


# -- the converter: strict scalars, lists and tables as TOML and JSON write them -----------------------

_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


def _scalar(tp: type) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _tp: Any) -> Any:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            raise _Wrong(_NAMES[tp], value)
        if tp is float and not math.isfinite(value):
            raise _Wrong("a finite number", value, show_value=False)
        return value

    return hook


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list


def _list_hook(tp: Any) -> Callable:
    (item,) = typing.get_args(tp)
    simple = item in _NAMES

    def hook(value: Any, _tp: Any) -> list:
        if simple:
            if not isinstance(value, list) or not all(isinstance(v, item) and not (item is not bool and isinstance(v, bool))
                                                      for v in value):
                raise _Wrong(f"a list of {_NAMES[item]}", value)
            return list(value)
        if not isinstance(value, list):
            raise _Wrong("an array of tables", value)
        return [converter().structure(v, item) for v in value]

    return hook


def _is_tuple_of(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(tp: Any) -> Callable:
    item = typing.get_args(tp)[0]

    def hook(value: Any, _tp: Any) -> tuple:
        import cattrs

        if not isinstance(value, list):
            raise _Wrong("an array of tables", value)
        out, errors = [], []
        for i, v in enumerate(value):
            try:
                out.append(converter().structure(v, item))
            except Exception as e:  # noqa: BLE001 - re-raised below with its index
                e.__notes__ = [*getattr(e, "__notes__", []), cattrs.IterableValidationNote(f"index {i}", i, item)]
                errors.append(e)
        if errors:
            raise cattrs.IterableValidationError("bad items", errors, tp)
        return tuple(out)

    return hook


def _is_str_table(tp: Any) -> bool:
    return typing.get_origin(tp) is dict and typing.get_args(tp) == (str, str)


def _str_table(value: Any, _tp: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Wrong("a table of strings", value)
    return dict(value)



def _is_lists_table(tp: Any) -> bool:
    return typing.get_origin(tp) is dict and typing.get_args(tp) == (str, list[str])


def _lists_table(value: Any, _tp: Any) -> dict:
    """A table whose values are arrays of strings (``per-file-ignores``); a lone string is refused."""
    if not isinstance(value, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                              for v in value.values()):
        raise _Wrong("a table of arrays of strings", value)
    return {k: list(v) for k, v in value.items()}


REMOVED: dict[type, dict[str, str]] = {}  # class -> removed key -> why (a clearer error than "unknown key")


def _dataclass_hook(cls: type) -> Callable:
    import cattrs
    from cattrs.gen import make_dict_structure_fn

    generated = make_dict_structure_fn(cls, converter(), _cattrs_forbid_extra_keys=False,
                                       _cattrs_detailed_validation=True,
                                       **{f.name: cattrs.gen.override(omit=True) for f in dataclasses.fields(cls)
                                          if not f.metadata.get("key", True)})
    known = _keys(cls)

    def hook(value: Any, _tp: Any) -> Any:
        if not isinstance(value, dict):
            raise _Wrong("a table", value)
        table, spelled = {}, {}
        for k, v in value.items():
            name = str(k).replace("-", "_")
            if name not in known:
                raise _Unknown(str(k), sorted(known), REMOVED.get(cls, {}).get(name, ""))
            table[name], spelled[name] = v, str(k)
        missing = [n for n, f in known.items() if n not in table and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise _Missing(missing)
        try:
            return generated(table, cls)
        except cattrs.ClassValidationError as e:  # name the key as the file spells it ("accepted-words")
            for sub in e.exceptions:
                sub.__notes__ = [cattrs.AttributeValidationNote(str(n), spelled.get(n.name, n.name), n.type)
                                 if isinstance(n, cattrs.AttributeValidationNote) else n
                                 for n in getattr(sub, "__notes__", [])]
            raise

    return hook



@cache
def converter():
    """The one cattrs converter (built on first use: a run with no configuration file never imports cattrs)."""
    import cattrs

    conv = cattrs.Converter(detailed_validation=True)
    for tp in (str, int, float, bool):
        conv.register_structure_hook(tp, _scalar(tp))
    conv.register_structure_hook_func(_is_list, lambda v, tp: _list_hook(tp)(v, tp))
    conv.register_structure_hook_func(_is_tuple_of, lambda v, tp: _tuple_hook(tp)(v, tp))
    conv.register_structure_hook_func(_is_str_table, _str_table)
    conv.register_structure_hook_func(_is_lists_table, _lists_table)
    conv.register_structure_hook(typing.Any, lambda v, _tp: v)
    conv.register_structure_hook_factory(dataclasses.is_dataclass, _dataclass_hook)
    return conv


# -- from a cattrs error to one sentence --------------------------------------------------------------


def _leaf(e: BaseException, path: list[str], meta: typing.Mapping = {}) -> tuple[BaseException, list[str], typing.Mapping]:
    """The first underlying error of a cattrs error tree, the keys that lead to it, and its field's metadata."""
    import cattrs

    if isinstance(e, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        for sub in e.exceptions:
            step, sub_meta = [], meta
            for note in getattr(sub, "__notes__", []):
                if isinstance(note, cattrs.AttributeValidationNote):
                    step = [note.name]
                    cl = getattr(e, "cl", None)
                    fields = {f.name: f for f in dataclasses.fields(cl)} if dataclasses.is_dataclass(cl) else {}
                    norm = note.name.replace("-", "_")
                    sub_meta = fields[norm].metadata if norm in fields else {}
                elif isinstance(note, cattrs.IterableValidationNote):
                    step = [f"[{note.index}]"]
            return _leaf(sub, path + step, sub_meta)
    return e, path, meta


def _dotted(prefix: str, path: list[str]) -> str:
    out = prefix
    for p in path:
        out = f"{out}{p}" if p.startswith("[") else (f"{out}.{p}" if out else p)
    return out


def message(e: BaseException, prefix: str) -> str:
    """What went wrong, naming the key (without the file)."""
    leaf, path, meta = _leaf(e, [])
    key = _dotted(prefix, path)
    if isinstance(leaf, _Unknown):
        full = _dotted(key, [leaf.key])
        if leaf.removed:
            return f"'{full}' was removed: {leaf.removed}"
        return f"unknown key '{full}' (known: {', '.join(leaf.known)})"
    if isinstance(leaf, _Missing):
        return f"'{key}' needs {', '.join(leaf.names)}"
    if isinstance(leaf, _Wrong):
        shown = f", not {type(leaf.value).__name__} ({leaf.value!r})" if leaf.show_value else f", not {leaf.value!r}"
        expected = meta.get("expected", leaf.expected) if leaf.expected in _NAMES.values() else leaf.expected
        return f"'{key}' must be {expected}{shown}"
    return f"'{key}': {type(leaf).__name__}: {leaf}"


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def limit_problem(value: Any, meta: typing.Mapping) -> str:
    """Why ``value`` breaks the limits in ``meta`` ("" when it keeps them)."""
    low, high, above, choices = meta.get("low"), meta.get("high"), meta.get("above"), meta.get("choices")
    pattern = meta.get("pattern")
    if pattern is not None and isinstance(value, str) and value and not pattern.match(value):
        return f"must be {meta.get('expected', 'of the form ' + pattern.pattern)}, not {value!r}"
    if choices is not None:
        if value not in choices:
            return f"must be {', '.join(map(str, choices[:-1]))} or {choices[-1]}, not {value!r}"
        return ""
    if isinstance(value, (list, tuple)):
        most = meta.get("max_items")
        return f"may list at most {most:,} entries, not {len(value):,}" if most is not None and len(value) > most else ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    if above is not None and not value > above:
        return f"must be greater than {_num(above)}"
    if low is not None and high is not None and not low <= value <= high:  # also refuses nan
        return f"must be from {_num(low)} to {_num(high)}, not {value!r}"
    if low is not None and high is None and not value >= low:
        return f"must be at least {_num(low)}, not {value!r}"
    if high is not None and low is None and not value <= high:
        return f"must be at most {_num(high)}, not {value!r}"
    return ""


def check_fields(obj: Any, prefix: str) -> None:
    """Raise :class:`_BoundsAt` (caught by :func:`structure`) for the first field outside its declared limits."""
    for f in dataclasses.fields(obj):
        if not f.metadata.get("key", True):
            continue
        value = getattr(obj, f.name)
        why = limit_problem(value, f.metadata)
        if why:
            raise _BoundsAt(_dotted(prefix, [f.name]), why)
        if dataclasses.is_dataclass(value):
            check_fields(value, _dotted(prefix, [f.name]))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    check_fields(item, _dotted(prefix, [f.name, f"[{i}]"]))


class _BoundsAt(Exception):
    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"'{key}' {why}")


def structure(cls: type, table: Any, *, source: str, prefix: str = "", error: type[Exception] = ValueError) -> Any:
    """``table`` as a ``cls`` with every limit checked; any problem raises ``error("<source>: <key> ...")``."""
    try:
        obj = converter().structure(table, cls)
        check_fields(obj, prefix)
    except _BoundsAt as e:
        raise error(f"{source}: {e}") from None
    except (RecursionError, MemoryError) as e:
        raise error(f"{source}: cannot use these settings: {type(e).__name__}") from None
    except Exception as e:  # noqa: BLE001 - every cattrs and hook error becomes one sentence
        raise error(f"{source}: {message(e, prefix)}") from None
    return obj


def structure_leniently(cls: type, table: dict, *, prefix: str, aliases: Callable[[str], str] = lambda n: n,
                        describe: Callable[..., str] | None = None) -> tuple[Any, list[str]]:
    """``table`` as a ``cls``, field by field: a bad value is replaced by its default and reported, unknown
    keys are ignored (editors send their own keys in the same section). For settings that must never stop
    a server. ``aliases`` maps a field name to its key in ``table`` (camelCase for JSON); ``describe(field,
    type, value, key, default)`` words the report of a bad value."""
    errors: list[str] = []
    values = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        k = aliases(f.name)
        if not f.metadata.get("key", True) or k not in table:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        key = _dotted(prefix, [k])
        tp, raw = hints[f.name], table[k]
        if dataclasses.is_dataclass(default):
            if raw is None:
                continue
            if not isinstance(raw, dict):
                errors.append(f"{key} must be an object, not {raw!r}; using the defaults")
                continue
            values[f.name], sub = structure_leniently(type(default), raw, prefix=key, aliases=aliases, describe=describe)
            errors += sub
            continue
        if tp is int and isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # JSON has one kind of number
        try:
            value = converter().structure(raw, tp)
            why = limit_problem(value, f.metadata)
        except Exception:  # noqa: BLE001 - reported below, the default stays
            value, why = None, "wrong type"
        if why:
            errors.append(describe(f, tp, table[k], key, default) if describe else
                          f"{key} must be {f.metadata.get('expected', 'valid')}, not {table[k]!r}; using {default!r}")
            continue
        values[f.name] = value
    return cls(**values), errors

"""The one settings converter (storytransformer.typed_settings): what every loader's messages are made of."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storytransformer import typed_settings as ts
from storytransformer.typed_settings import setting

ROOT = Path(__file__).resolve().parents[2]


class Bad(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    name: str
    size: int = setting(1, low=1, high=10, expected="an integer")


@dataclass
class Inner:
    ratio: float = setting(0.5, low=0, high=1)
    mode: str = setting("auto", choices=("auto", "on", "off"))
    words: list[str] = field(default_factory=list)


@dataclass
class Outer:
    count: int = setting(3, low=1, high=100)
    rate: float = setting(2.0, above=0, high=1e3, expected="a number")
    flag: bool = False
    table: dict[str, str] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    items: tuple[Item, ...] = setting((), max_items=2)
    source: str = setting("", key=False)


ts.REMOVED[Outer] = {"legacy": "it did nothing; delete the line"}


def err(table) -> str:
    with pytest.raises(Bad) as e:
        ts.structure(Outer, table, source="f.toml", prefix="tool.x", error=Bad)
    return str(e.value)


def test_good_tables_become_dataclasses_with_hyphens_and_ints_for_floats():
    got = ts.structure(Outer, {"count": 4, "rate": 7, "inner": {"ratio": 1, "words": ["a"]},
                               "items": [{"name": "m", "size": 2}], "table": {"a": "b"}},
                       source="f.toml", prefix="tool.x", error=Bad)
    assert got == Outer(4, 7.0, False, {"a": "b"}, Inner(1.0, "auto", ["a"]), (Item("m", 2),))
    assert isinstance(got.rate, float) and isinstance(got.inner.ratio, float)


@pytest.mark.parametrize("table, message", [
    ({"colour": 1}, "f.toml: unknown key 'tool.x.colour' (known: count, flag, inner, items, rate, table)"),
    ({"source": "x"}, "unknown key 'tool.x.source'"),  # filled in by the loader, never read from files
    ({"legacy": 1}, "f.toml: 'tool.x.legacy' was removed: it did nothing; delete the line"),
    ({"count": "3"}, "f.toml: 'tool.x.count' must be int, not str ('3')"),
    ({"count": True}, "'tool.x.count' must be int, not bool (True)"),
    ({"flag": 1}, "'tool.x.flag' must be bool, not int (1)"),
    ({"rate": "fast"}, "'tool.x.rate' must be a number, not str ('fast')"),
    ({"rate": math.nan}, "'tool.x.rate' must be a finite number, not nan"),
    ({"rate": 0}, "'tool.x.rate' must be greater than 0"),
    ({"count": 0}, "'tool.x.count' must be from 1 to 100, not 0"),
    ({"inner": 3}, "'tool.x.inner' must be a table, not int (3)"),
    ({"inner": {"ratio": 2}}, "'tool.x.inner.ratio' must be from 0 to 1, not 2.0"),
    ({"inner": {"mode": "loud"}}, "'tool.x.inner.mode' must be auto, on or off, not 'loud'"),
    ({"inner": {"words": "abc"}}, "'tool.x.inner.words' must be a list of str, not str ('abc')"),
    ({"inner": {"words": ["a", 1]}}, "'tool.x.inner.words' must be a list of str"),
    ({"inner": {"wrods": []}}, "unknown key 'tool.x.inner.wrods'"),
    ({"table": {"a": 1}}, "'tool.x.table' must be a table of strings"),
    ({"items": {"name": "m"}}, "'tool.x.items' must be an array of tables"),
    ({"items": [{"size": 2}]}, "'tool.x.items[0]' needs name"),
    ({"items": [{"name": "m"}, {"name": "n", "size": 11}]}, "'tool.x.items[1].size' must be from 1 to 10, not 11"),
    ({"items": [{"name": "m", "size": "2"}]}, "'tool.x.items[0].size' must be an integer, not str ('2')"),
    ({"items": [{"name": "m", "url": "u"}]}, "unknown key 'tool.x.items[0].url'"),
    ({"items": [{"name": str(i)} for i in range(3)]}, "'tool.x.items' may list at most 2 entries, not 3"),
])
def test_each_problem_is_one_sentence_naming_file_and_key(table, message):
    assert message in err(table)


def test_keys_are_named_as_the_file_spells_them():
    @dataclass
    class Words:
        accepted_words: list[str] = field(default_factory=list)

    with pytest.raises(Bad, match="'accepted-words' must be a list of str"):
        ts.structure(Words, {"accepted-words": "fast"}, source="f", error=Bad)


def test_lenient_structuring_keeps_defaults_and_reports_each_problem():
    got, errors = ts.structure_leniently(Outer, {"count": 0, "flag": "yes", "inner": {"ratio": 0.25, "mode": "x"},
                                                 "unknown": 1}, prefix="s")
    assert got.count == 3 and got.flag is False and got.inner == Inner(0.25, "auto", [])
    assert len(errors) == 3 and all(e.startswith("s.") for e in errors), errors


def test_every_settings_loader_uses_the_one_converter():
    loaders = ["storytransformer/config.py", "storytransformer/report/settings.py",
               "server/storytransformer_server/daemon/settings.py", "server/storytransformer_server/lsp/options.py"]
    for path in loaders:
        text = (ROOT / path).read_text("utf-8")
        assert re.search(r"typed_settings", text), f"{path} does not use storytransformer.typed_settings"
        assert "typing.get_type_hints" not in text and "isinstance(value, want)" not in text, \
            f"{path} still checks types by hand"

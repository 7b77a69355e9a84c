"""Content words of a story: stems with function words dropped.

Shared by the engine's grounding check and the similarity index's need check; kept here, below
both, so neither imports the other.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .story import Story

WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")

# Words of the story template and function words: they carry no requirement of their own.
FUNCTION_WORDS = frozenset("""
a an the as i we me my our us you your he she it its they them their this that these those
want wants wanted wish would like need needs can could be able am is are was were been being have has had do does
to so of in on at by for with from into onto about over under between through during after before without within
and or but nor not no if then than when while where which who whom whose what how why also too only just all any
each every some such other another more most same own one ones there here via per s
""".split())


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return _stemmer().stemWord(w)


def content_words(text: str, allowed: frozenset[str] = frozenset()) -> dict[str, str]:
    """Stem -> first surface form, for every content word of ``text``."""
    out: dict[str, str] = {}
    for w in WORD.findall(text):
        lw = w.lower().replace("’", "'")
        if lw in FUNCTION_WORDS or lw in allowed or lw.split("'")[0] in FUNCTION_WORDS:
            continue
        out.setdefault(stem(lw), w)
    return out


def source_text(story: Story) -> str:
    """The requirement text of a source story: its parts, not what trails them."""
    parts = [p.text for p in story.parts()]
    return " ".join(parts) if parts else story.text

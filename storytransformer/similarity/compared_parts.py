"""What of a story gets compared: its parts as text, and the content-word lemmas of each.

The lexical side uses a light rule-based lemmatizer (irregular forms plus
suffix rules) instead of spaCy: overlap only needs both sides reduced the same
way ("uploads", "uploaded", "uploading" -> "upload"), and this runs about a
hundred times faster than a tagged spaCy pipeline, which matters at 20,000
stories (docs/similarity.md has the comparison).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..story import Story

WORD = re.compile(r"[a-z][a-z0-9]*(?:['-][a-z0-9]+)*")

# Function words and the template's own words: they say nothing about what a story is about.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each either else even ever every few for from further get
gets got had has have having he her here hers him his how i if in into is it its itself just let like me might more
most my myself neither no nor not now of off on once only or other our ours out over own per please same shall she
should so some such than that the their theirs them then there these they this those through thus to too under until
up upon us very via want wants was way we well were what when where whether which while who whom whose why will
wish with within without would yet you your yours able need needs needed new one ones etc e.g i.e
""".split())

IRREGULAR = {
    "children": "child", "people": "person", "men": "man", "women": "woman", "data": "data", "media": "media",
    "criteria": "criterion", "analyses": "analysis", "indices": "index", "went": "go", "gone": "go",
    "made": "make", "making": "make", "bought": "buy", "built": "build", "found": "find", "kept": "keep",
    "left": "leave", "sent": "send", "seen": "see", "saw": "see", "taken": "take", "took": "take", "told": "tell",
    "written": "write", "wrote": "write", "chosen": "choose", "known": "know", "shown": "show", "given": "give",
    "paid": "pay", "ran": "run", "running": "run", "began": "begin", "begun": "begin", "held": "hold",
    "logged": "log", "logging": "log", "signed": "sign", "mapping": "map", "mapped": "map", "status": "status",
    "process": "process", "access": "access", "address": "address", "business": "business", "class": "class",
    "news": "news", "analysis": "analysis", "series": "series", "used": "use", "using": "use", "uses": "use",
}


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """A light lemma: irregular forms, then plural, -ing and -ed rules, then no final "e".

    Dropping the final "e" makes "store", "stored" and "storing" agree without
    knowing the part of speech; the result is a key for matching, not a word.
    """
    w = word.lower().strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    w = IRREGULAR.get(w, w)
    if len(w) > 3:
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith(("sses", "shes", "ches", "xes", "zes")):
            w = w[:-2]
        elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        else:
            for suffix in ("ing", "ed"):
                if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                    w = w[: -len(suffix)]
                    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz":
                        w = w[:-1]  # "mapped" -> "map"
                    elif w[-1] == "i":
                        w = w[:-1] + "y"  # "applied" -> "apply"
                    break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


_LEMMAS: dict[str, str] = {}


def content_lemmas(text: str) -> frozenset[str]:
    """The set of content-word lemmas of ``text`` (stop words and numbers dropped)."""
    known = _LEMMAS
    out = []
    for w in WORD.findall(text.lower()):
        if w in STOP_WORDS:
            continue
        lem = known.get(w)
        if lem is None:
            lem = lemma(w)
            if len(known) < 200_000:  # bounded: a workspace has far fewer distinct words
                known[w] = lem
        out.append(lem)
    return frozenset(out)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def clean(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class StoryTexts:
    """The texts of a story that get embedded: the whole story and each part (None when absent)."""

    whole: str
    role: str | None
    means: str | None
    ends: str | None

    @staticmethod
    def of(story: Story) -> "StoryTexts":
        def part(p):
            t = clean(p.text) if p is not None else ""
            return t or None

        return StoryTexts(clean(story.text), part(story.role), part(story.means), part(story.ends))

    @property
    def means_or_whole(self) -> str:
        """What the story wants: its means, or the whole text when no means was recognised."""
        return self.means or self.whole


# Role words that name the same kind of person. Writers restating a story for another team swap them
# freely ("admin" / "administrator", "PI" / "principal investigator"); a role's lemmas are mapped to one
# key before they are compared.
ROLE_SYNONYMS = {
    "admin": "administrator", "sysadmin": "administrator", "elderly": "old", "older": "old", "olderperson": "old",
    "senior": "old", "carer": "caregiver", "medicalcaregiver": "caregiver", "scientist": "researcher",
    "staffer": "staff", "employee": "staff", "worker": "staff", "customer": "client", "participant": "player",
    "dev": "developer", "programmer": "developer", "mgr": "manager", "consumer": "consume", "consuming": "consume",
}
ROLE_FILLER = frozenset({"member", "person", "user", "team", "site", "platform", "people", "someone"})


def _role_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOP_WORDS]


def role_lemmas(text: str) -> frozenset[str]:
    """The content lemmas of a role with synonyms mapped to one key and acronyms spelled out where
    the role itself does not say more ("DAMS manager" keeps "dams"; see :func:`role_overlap`)."""
    return frozenset(lemma(ROLE_SYNONYMS.get(w, w)) for w in _role_words(text))


def role_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """How much two roles (their :func:`role_lemmas`) name the same person: Jaccard overlap after
    expanding an acronym of one into the words of the other ("PI" and "principal investigator"), with
    generic words ("member", "user") left out when anything else is left."""
    a, b = _expand(a, b), _expand(b, a)
    core_a, core_b = a - ROLE_FILLER or a, b - ROLE_FILLER or b
    return max(jaccard(a, b), jaccard(core_a, core_b))


def _expand(mine: frozenset[str], other: frozenset[str]) -> frozenset[str]:
    """``mine`` with each short token that spells the initials of words of ``other`` replaced by them."""
    out = set(mine)
    initials = {w[0]: w for w in other}
    for token in mine:
        if 2 <= len(token) <= 5 and token not in other and len(set(token)) == len(token):
            words = [initials.get(ch) for ch in token]
            if all(words):
                out.discard(token)
                out.update(words)
    return frozenset(out)


# -- one word swapped: siblings, not duplicates ---------------------------------------------------
# Template-heavy backlogs are full of stories that repeat one sentence with one word of the object
# or a qualifier changed ("normalise measures by population" / "... by GDP", "see the sections on
# roles" / "... on responsibilities"): their embeddings are as close as real restatements, but
# annotators never called such a pair a duplicate (0 of 29 in the tune backlogs). A swapped leading
# verb is left to the embeddings: annotators call "publish" / "create a data package in the UI" one
# need and "enable" / "disable explore" two, and no word list tells those apart.

# Words that name the same channel or format: swapping one for another restates the need ("renew a
# book online" / "renew a book on the website"), it does not make a sibling. Mapped to one key before
# the swap is looked for; kept to everyday equivalents, since a wrong entry hides a real sibling.
SAME_THING = {
    "online": "web", "website": "web", "site": "web", "internet": "web", "portal": "web", "webpage": "web",
    "e-mail": "email", "mail": "email", "emails": "email",
    "smartphone": "phone", "mobile": "phone", "cellphone": "phone",
}


# Words in -ly that are not adverbs: the action of "apply a hold" or the object of "a family account".
NOT_ADVERBS = frozenset("""apply reply supply comply imply multiply rely family assembly anomaly monopoly
butterfly italy july""".split())


def _means_words(text: str) -> dict[str, tuple[int, str]]:
    """Content lemma -> (position among the content words, the word), adverbs in -ly left out and
    :data:`SAME_THING` words mapped to one key."""
    out: dict[str, tuple[int, str]] = {}
    for w in WORD.findall(text.lower()):
        if w in STOP_WORDS or (w.endswith("ly") and len(w) > 4 and w not in NOT_ADVERBS):
            continue
        out.setdefault(lemma(SAME_THING.get(w, w)), (len(out), w))
    return out


def swapped_word(a: str, b: str) -> tuple[str, str, bool] | None:
    """When two means differ by exactly one content word each way: (word of a, word of b, whether both
    are the means' leading word, its action); otherwise None."""
    wa, wb = _means_words(a), _means_words(b)
    only_a, only_b = wa.keys() - wb.keys(), wb.keys() - wa.keys()
    if len(only_a) != 1 or len(only_b) != 1:
        return None
    (la,), (lb,) = only_a, only_b
    (pa, xa), (pb, xb) = wa[la], wb[lb]
    return xa, xb, pa == 0 and pb == 0


def one_word_sibling(a: str, b: str) -> bool:
    """Whether means ``a`` and ``b`` are the same sentence with one word of its object or a qualifier
    swapped (any one content word but the leading verb): sibling stories, however close their
    embeddings."""
    swap = swapped_word(a, b)
    return swap is not None and not swap[2]


MAX_SWAPPED_PHRASE = 2  # content words on each side of a swapped phrase ("in Excel" / "from a Google Spreadsheet")


def swapped_phrase(a: str, b: str) -> bool:
    """Whether means ``a`` and ``b`` are one sentence with a short phrase of its object or a qualifier
    swapped for another that shares no word with it ("import data in Excel" / "import data from a Google
    Spreadsheet", "know all events done to an object over its life cycle" / "... occurring to a component
    ..."): the same action and at least two content words around the swap, at most
    :data:`MAX_SWAPPED_PHRASE` content words swapped on either side. A means that only adds words to the
    other's is no swap (``contained``: one need said at two lengths)."""
    wa, wb = _means_words(a), _means_words(b)
    if not wa or not wb:
        return False
    sa, sb = list(wa), list(wb)  # in the order of the words
    prefix = 0
    while prefix < min(len(sa), len(sb)) and sa[prefix] == sb[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(sa), len(sb)) - prefix and sa[len(sa) - 1 - suffix] == sb[len(sb) - 1 - suffix]:
        suffix += 1
    mid_a, mid_b = sa[prefix:len(sa) - suffix], sb[prefix:len(sb) - suffix]
    return (prefix >= 1 and prefix + suffix >= 2 and 1 <= len(mid_a) <= MAX_SWAPPED_PHRASE
            and 1 <= len(mid_b) <= MAX_SWAPPED_PHRASE and not set(mid_a) & set(mid_b))


# Operations on a thing that a backlog asks for in separate stories: "add an item" and "edit an item"
# are two needs however close their embeddings (the words around the verb are the same). Words of one
# group name one operation ("delete" / "remove"). Kept to operations whose difference nobody would merge
# away: verbs that restate each other across teams ("publish" / "create" a package, "renew" / "extend")
# are left out, and so are light verbs ("have", "get", "know") that say little about the operation.
OPERATIONS = {
    "create": "create add register upload",
    "edit": "edit update modify change rename correct",
    "delete": "delete remove erase",
    "view": "view see display browse preview list",
    "search": "search find filter",
    "import": "import",
    "export": "export download",
    "copy": "copy paste duplicate clone",
    "enable": "enable activate",
    "disable": "disable deactivate",
    "login": "log login",
    "approve": "approve accept",
    "reject": "reject decline",
    **{op: op for op in "assign apply archive restore lock unlock subscribe unsubscribe print sort".split()},
}
_OPERATION_OF = {lemma(w): op for op, words in OPERATIONS.items() for w in words.split()}
# Words that come before the action without being it ("the ability to attach", "a way to sort").
_BEFORE_ACTION = frozenset(lemma(w) for w in
                           "ability option possibility opportunity chance way method mechanism tool feature "
                           "functionality possible easy".split())


def _action(text: str) -> tuple[str, set[str]]:
    """(the lemma of the means' leading action word, every content lemma of the means), words as
    :func:`swapped_word` sees them."""
    words = _means_words(text)
    return next((w for w in words if w not in _BEFORE_ACTION), ""), set(words)


def other_operation(a: str, b: str) -> bool:
    """Whether means ``a`` and ``b`` lead with different operations of :data:`OPERATIONS` ("apply a
    hold" / "remove a hold", "create an account" / "log in"), neither means naming the other's: sibling
    stories, however close their embeddings. "add or remove a facility" and "remove a facility" are not."""
    (lead_a, words_a), (lead_b, words_b) = _action(a), _action(b)
    op_a, op_b = _OPERATION_OF.get(lead_a), _OPERATION_OF.get(lead_b)
    return op_a is not None and op_b is not None and op_a != op_b and lead_a not in words_b and lead_b not in words_a


# -- what the learned pair judge reads from the words of two means -----------------------------------
# The embeddings say how close two needs are; these say how: the same action on another object
# ("see the sections on roles" / "... on costing") is a sibling need, the same object with more
# qualifiers ("upload files" / "upload files through the web interface") one need said at two lengths.

def means_relation(a: str, b: str) -> tuple[float, float, float, float]:
    """(same leading verb, overlap of the other content words, ratio of the numbers of content words,
    share of the shorter means' content words the longer one has) of two means, every value in [0, 1].
    Words as :func:`swapped_word` sees them: lemmas, -ly adverbs left out, :data:`SAME_THING` folded."""
    wa, wb = _means_words(a), _means_words(b)
    if not wa or not wb:
        return 0.0, 0.0, 0.0, 0.0
    lead_a = min(wa, key=lambda k: wa[k][0])
    lead_b = min(wb, key=lambda k: wb[k][0])
    same_verb = float(lead_a == lead_b)
    obj = jaccard(frozenset(wa) - {lead_a}, frozenset(wb) - {lead_b})
    shorter, longer = sorted((len(wa), len(wb)))
    coverage = len(wa.keys() & wb.keys()) / shorter
    return same_verb, obj, shorter / longer, coverage

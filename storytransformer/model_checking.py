"""The model checks (ST406, ST606, ST1002, ST1102, ST1201, ST1301) over a workspace, for every front end.

``check --model-checks``, ``report --model-checks`` and the daemon's ``model/check`` request all run
the same steps: which model rules the configuration leaves on, whether an engine is configured, the
embedding index's near pairs for ST606 (the model as the second judge of duplicates), the questions
within a budget, and, with a model whose cuts were measured (engine/judge.py ``TUNED``), the semantic
duplicates (ST603) it answers no to taken back. Each front end says the notes its own way.

The engine is imported only when the checks run: a plain check must work without its extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .config import Config
from .findings import Finding
from .story import Story

DEFAULT_QUESTIONS = 200
DEFAULT_SECONDS = 300.0

Pair = tuple[Story, Story, bool]  # (story, its near neighbour, whether the index already calls them duplicates)


@dataclass
class Outcome:
    """What a run of the model checks gives: its findings, the ST603 pairs it takes back, and notes
    (``(level, text)``, level ``note`` or ``warning``) that say what ran, what did not and why."""

    findings: list[Finding] = field(default_factory=list)
    dropped: list[tuple[Story, Story, float]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    ran: bool = False
    result: Any = None  # the engine's JudgeResult, when the model was asked

    def applied_to(self, findings: Iterable[Finding]) -> list[Finding]:
        """``findings`` (the deterministic and semantic ones) less the duplicates taken back, plus the model's."""
        return without_pairs(list(findings), "ST603", self.dropped) + self.findings


def model_codes() -> tuple[str, ...]:
    """The model rules, from the rule registry (importing the engine is left to the run)."""
    from .rules import RULES

    return tuple(sorted((code for code, rule in RULES.items() if rule.needs_model), key=lambda c: int(c[2:])))


def selected_codes(config: Config) -> list[str]:
    """The model rules this configuration leaves on once model checks are asked for (select, ignore, severity off)."""
    out = []
    for code in model_codes():
        on = not config.select or any(code.startswith(s.upper()) for s in config.select + config.extend_select)
        if any(code.startswith(s.upper()) for s in config.ignore) or config.severity.get(code) == "off":
            on = False
        if on:
            out.append(code)
    return out


def duplicate_pairs(stories: Sequence[Story], findings: Sequence[Finding], config: Config, index=None,
                    only=None) -> list[Pair]:
    """ST606's candidates: the embedding index's near pairs (``index``, else one built here), less those an
    exact or near-exact duplicate rule (ST601, ST602) joins (by its findings or by the same normalised words);
    each marked when ST603 joins it. ``only``: the near pairs of the stories it accepts alone (near_pairs)."""
    from .similarity.index import SimilarityIndex
    from .similarity.near_pairs import flagged_pairs, near_pairs
    from .formats.base import normalise

    index = index if index is not None else SimilarityIndex.build(stories, config.similarity)
    flagged = flagged_pairs(findings, "ST603")
    same = flagged_pairs(findings, "ST601") | flagged_pairs(findings, "ST602")
    out = []
    for a, b, _ in near_pairs(index, only=only):
        key = ((a.file, a.range.start.line), (b.file, b.range.start.line))
        if key not in same and normalise(a.text) != normalise(b.text):
            out.append((a, b, key in flagged))
    return out


def without_pairs(findings: list[Finding], code: str, pairs, root: str | None = None) -> list[Finding]:
    """``findings`` less those of ``code`` that join a story of ``pairs`` to its partner (either way round);
    a finding relating other stories too keeps them, and says only them."""
    from .similarity.workspace_findings import trimmed

    gone = set()
    for a, b, *_ in pairs:
        ka, kb = (a.file, a.range.start.line), (b.file, b.range.start.line)
        gone |= {(ka, kb), (kb, ka)}
    if not gone:
        return findings
    out = []
    for f in findings:
        if f.code == code:
            here = (f.file, f.range.start.line)
            kept = [i for i, r in enumerate(f.related) if (here, (r.file, r.range.start.line)) not in gone]
            if not kept:
                continue
            if len(kept) != len(f.related):
                f = trimmed(f, kept, root)
        out.append(f)
    return out


def run(config: Config, stories: Sequence[Story], findings: Sequence[Finding] = (), *, engine=None, index=None,
        semantic: bool = True, max_questions: int = DEFAULT_QUESTIONS, seconds: float = DEFAULT_SECONDS,
        thresholds: dict[str, float] | None = None, token=None, root: str | None = None,
        pairs: list[Pair] | None = None) -> Outcome:
    """The model checks on ``stories`` with ``config``'s engine (or ``engine``, one already made for it).

    ``findings``: the check's own (ST603 pairs are the ones the model may take back, ST601/ST602 pairs are
    not asked again); ``index``: the check's similarity index, when it kept one; ``semantic`` False when the
    embedding index is off (ST606 then is not asked); ``pairs``: ST606's candidates when the caller found them
    (the daemon, on the thread that owns its index). Nothing raises: an engine that cannot run is a note."""
    from .engine import Deadline
    from .engine.judge import availability, judge, tuned_cuts
    from .lint import severity_of
    from .rules import RULES

    out = Outcome()
    codes = selected_codes(config)
    if not codes:
        out.notes.append(("warning", "every model rule is deselected (select/ignore); nothing to ask"))
        return out
    ok, what = availability(config)
    if not ok:
        out.notes.append(("warning", f"{what}; the model checks ({', '.join(model_codes())}) did not run"))
        return out
    cuts = None if config.engine.remote_url else tuned_cuts(config.engine.model)
    if not config.engine.remote_url and not config.engine.model:
        out.notes.append(("warning", "the packaged SmolLM2-135M ranks these defects about as well as chance "
                          "(docs/benchmarks/model_checks.md): treat its findings as hints, or configure a capable model "
                          "(engine.model or engine.remote_url; scripts/install.sh --judge-model) and its thresholds (check --model-threshold)"))
    unmeasured = [c for c in codes if c != "ST606" and c not in (thresholds or {})]
    if config.engine.model and unmeasured:
        out.notes.append(("warning", f"the thresholds of {', '.join(unmeasured)} were tuned for the packaged "
                          f"SmolLM2-135M, not for {config.engine.model}; treat those findings as hints, or set their "
                          "thresholds (check --model-threshold)" + (" (only ST606 is measured with this model: select ST603,ST606)" if cuts else "")))
    from .engine import create_engine

    try:
        engine = engine or create_engine(config)
    except Exception as e:  # a bad remote_url: named by the engine's own error
        out.notes.append(("warning", f"{e}; the model checks did not run"))
        return out
    if "ST606" not in codes:
        pairs = []
    elif pairs is None:
        pairs = []
        if not semantic:
            out.notes.append(("warning", "ST606 needs the embedding index, which is turned off; not asked"))
        else:
            try:
                pairs = duplicate_pairs(stories, findings, config, index)
            except Exception as e:  # the embedding model missing or broken: named by its own error
                out.notes.append(("warning", f"ST606 not asked: {e}"))
    limits = ({"ST606": cuts.add} if cuts else {}) | (thresholds or {})
    result = judge(engine, stories, codes=codes, max_questions=max_questions, thresholds=limits,
                   deadline=Deadline.after(seconds), token=token, pairs=pairs, keep=cuts.keep if cuts else 0.0,
                   band=cuts.band if cuts else 0.0,
                   severity=lambda code: severity_of(RULES[code], config), root=root)
    out.ran, out.result, out.findings, out.dropped = True, result, list(result.findings), list(result.dropped)
    n = len(result.findings)
    out.notes.append(("warning", result.note) if result.stopped else
                     ("note", f"{result.note}: {n} finding{'s' if n != 1 else ''}"))
    if result.dropped:
        k = len(result.dropped)
        out.notes.append(("note", f"{k} semantic duplicate pair{'s' if k != 1 else ''} (ST603) left out: the model "
                          f"answered below {cuts.keep:g} that they ask for the same functionality"))
    return out

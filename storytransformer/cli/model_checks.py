"""``check --model-checks``: the model rules (ST406, ST606, ST1002, ST1102, ST1201, ST1301) run by the configured
engine after the deterministic check, within a budget; and what ``storytransformer rules`` says about them.
ST606 is the model as the second judge of the embedding index's near pairs: it adds the duplicates the
index missed and, with a model whose cuts were measured (engine/judge.py TUNED), takes back the semantic
duplicates (ST603) it answers no to.

Kept out of check.py: the flags and the wording of "no engine" live here, and the engine is imported only
when the checks are asked for.
"""

from __future__ import annotations

from ..config import Config
from ..findings import Finding

DEFAULT_QUESTIONS = 200
DEFAULT_SECONDS = 300.0


def add_arguments(p) -> None:
    p.add_argument("--model-checks", action="store_true",
                   help="also run the checks that need a language model (ST406, ST606, ST1002, ST1102, ST1201, ST1301) on "
                        "the configured engine (engine.model or engine.remote_url); slow on a CPU")
    p.add_argument("--model-budget", type=int, default=DEFAULT_QUESTIONS, metavar="N",
                   help=f"with --model-checks, ask the model at most N questions (default {DEFAULT_QUESTIONS})")
    p.add_argument("--model-timeout", type=float, default=DEFAULT_SECONDS, metavar="SECONDS",
                   help=f"with --model-checks, stop asking after this many seconds (default {DEFAULT_SECONDS:g})")
    p.add_argument("--model-threshold", action="append", default=[], metavar="CODE=P",
                   help="with --model-checks, flag a story for rule CODE when the model's P(yes) is at least P (0-1); "
                        "the defaults were tuned for the packaged SmolLM2-135M: another model needs its own")


def model_codes() -> tuple[str, ...]:
    """The model rules, from the rule registry: a plain ``check`` must not import the engine (its
    dependencies are an extra, and the pre-commit hook installs the package without them)."""
    from ..rules import RULES

    return tuple(sorted((code for code, rule in RULES.items() if rule.needs_model), key=lambda c: int(c[2:])))


def thresholds(values: list[str]) -> dict[str, float]:
    """``--model-threshold CODE=P`` values as a dict; a ValueError names the bad one."""
    MODEL_CODES = model_codes()  # noqa: N806 - the judge's name for the same tuple
    out = {}
    for v in values:
        code, _, p = v.partition("=")
        code = code.strip().upper()
        try:
            prob = float(p)
        except ValueError:
            prob = -1.0
        if code not in MODEL_CODES or not 0.0 <= prob <= 1.0:
            raise ValueError(f"--model-threshold {v!r}: expected CODE=P with CODE one of {', '.join(MODEL_CODES)} "
                             "and P between 0 and 1")
        out[code] = prob
    return out


def selected_codes(config: Config) -> list[str]:
    """The model rules this configuration leaves on once --model-checks asks for them (select, ignore, severity off)."""
    out = []
    for code in model_codes():
        on = not config.select or any(code.startswith(s.upper()) for s in config.select + config.extend_select)
        if any(code.startswith(s.upper()) for s in config.ignore) or config.severity.get(code) == "off":
            on = False
        if on:
            out.append(code)
    return out


def run(args, config: Config, stories, say, findings: list[Finding] = (), engine=None, index=None) -> list[Finding]:
    """``findings`` (the deterministic check's) with the model findings on ``stories`` added and, with a measured
    model, the semantic duplicates it takes back removed; unchanged when no engine is configured (said through ``say``).
    ``engine``: one already created for ``config`` (a caller checking many backlogs loads the model once);
    ``index``: the check's similarity index of ``stories``, when it kept one (else ST606 builds it)."""
    from ..engine import Deadline
    from ..engine.judge import availability, judge, tuned_cuts
    from ..lint import severity_of
    from ..rules import RULES

    findings = list(findings)
    codes = selected_codes(config)
    if not codes:
        say("warning", "--model-checks: every model rule is deselected (--select/--ignore); nothing to ask")
        return findings
    ok, what = availability(config)
    if not ok:
        say("warning", f"--model-checks: {what}; the model checks ({', '.join(model_codes())}) did not run")
        return findings
    cuts = None if config.engine.remote_url else tuned_cuts(config.engine.model)
    if not config.engine.remote_url and not config.engine.model:
        say("warning", "--model-checks: the packaged SmolLM2-135M ranks these defects about as well as chance "
            "(docs/benchmarks/model_checks.md): treat its findings as hints, or configure a capable model "
            "(engine.model or engine.remote_url; scripts/install.sh --judge-model) and its thresholds (--model-threshold)")
    unmeasured = [c for c in codes if c != "ST606" and c not in (args.thresholds or {})]
    if config.engine.model and unmeasured:
        say("warning", f"--model-checks: the thresholds of {', '.join(unmeasured)} were tuned for the packaged "
            f"SmolLM2-135M, not for {config.engine.model}; treat those findings as hints, or set --model-threshold"
            + (" (only ST606 is measured with this model: --select ST603,ST606)" if cuts else ""))
    from ..engine import create_engine

    try:
        engine = engine or create_engine(config)
    except Exception as e:  # a bad remote_url: named by the engine's own error
        say("warning", f"--model-checks: {e}; the model checks did not run")
        return findings
    pairs = _duplicate_pairs(args, config, stories, findings, say, index) if "ST606" in codes else []
    thresholds = ({"ST606": cuts.add} if cuts else {}) | (args.thresholds or {})
    result = judge(engine, stories, codes=codes, max_questions=args.model_budget, thresholds=thresholds,
                   deadline=Deadline.after(args.model_timeout), pairs=pairs, keep=cuts.keep if cuts else 0.0,
                   severity=lambda code: severity_of(RULES[code], config))
    say("warning" if result.stopped else "note", result.note if result.stopped else
        f"{result.note}: {len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}")
    if result.dropped:
        findings = _without_pairs(findings, "ST603", result.dropped)
        say("note", f"--model-checks: {len(result.dropped)} semantic duplicate pair"
            f"{'s' if len(result.dropped) != 1 else ''} (ST603) left out: the model answered below {cuts.keep:g} "
            "that they ask for the same functionality")
    return findings + result.findings


def _duplicate_pairs(args, config: Config, stories, findings: list[Finding], say, index=None) -> list:
    """ST606's candidates: (story, near neighbour, already an ST603 duplicate) from the embedding index
    (the check's own, else one built here: the semantic rules may all be deselected)."""
    if getattr(args, "no_semantic", False):
        say("warning", "--model-checks: ST606 needs the embedding index, which --no-semantic turns off; not asked")
        return []
    from ..similarity.index import SimilarityIndex
    from ..similarity.near_pairs import flagged_pairs, near_pairs

    try:
        index = index if index is not None else SimilarityIndex.build(stories, config.similarity)
    except Exception as e:  # the embedding model missing or broken: named by its own error
        say("warning", f"--model-checks: ST606 not asked: {e}")
        return []
    flagged = flagged_pairs(findings, "ST603")
    same = flagged_pairs(findings, "ST601") | flagged_pairs(findings, "ST602")
    out = []
    for a, b, _ in near_pairs(index):
        key = ((a.file, a.range.start.line), (b.file, b.range.start.line))
        if key not in same:
            out.append((a, b, key in flagged))
    return out


def _without_pairs(findings: list[Finding], code: str, pairs) -> list[Finding]:
    """``findings`` less those of ``code`` that join a story of ``pairs`` to its partner (either way round);
    a finding relating other stories too keeps them."""
    from dataclasses import replace

    gone = set()
    for a, b, _ in pairs:
        ka, kb = (a.file, a.range.start.line), (b.file, b.range.start.line)
        gone |= {(ka, kb), (kb, ka)}
    out = []
    for f in findings:
        if f.code == code:
            here = (f.file, f.range.start.line)
            kept = tuple(r for r in f.related if (here, (r.file, r.range.start.line)) not in gone)
            if not kept:
                continue
            if len(kept) != len(f.related):
                f = replace(f, related=kept)
        out.append(f)
    return out


def describe(config: Config | None) -> str:
    """For ``storytransformer rules``: whether ``check --model-checks`` would run the model rules here."""
    from ..engine.judge import availability

    ok, what = availability(config or Config())
    return f"runs with `check --model-checks` on the {what}" if ok else \
        f"would run with `check --model-checks`, but {what.removeprefix('no engine: ')}"

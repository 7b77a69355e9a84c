"""``check --model-checks``: the model rules (ST406, ST606, ST1002, ST1102, ST1201, ST1301) run by the configured
engine after the deterministic check, within a budget; and what ``storytransformer rules`` says about them.
ST606 is the model as the second judge of the embedding index's near pairs: it adds the duplicates the
index missed and, with a model whose cuts were measured (engine/judge.py TUNED), takes back the semantic
duplicates (ST603) it answers no to.

Kept out of check.py: the flags and the wording of "no engine" live here, and the engine is imported only
when the checks are asked for.
"""

from __future__ import annotations

from .. import model_checking
from ..config import Config
from ..findings import Finding
from ..model_checking import DEFAULT_QUESTIONS, DEFAULT_SECONDS, model_codes, selected_codes  # noqa: F401 - re-exported


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


def run(args, config: Config, stories, say, findings: list[Finding] = (), engine=None, index=None) -> list[Finding]:
    """``findings`` (the deterministic check's) with the model findings on ``stories`` added and, with a measured
    model, the semantic duplicates it takes back removed; unchanged when no engine is configured (said through ``say``).
    ``engine``: one already created for ``config`` (a caller checking many backlogs loads the model once);
    ``index``: the check's similarity index of ``stories``, when it kept one (else ST606 builds it)."""
    outcome = model_checking.run(config, stories, findings, engine=engine, index=index,
                                 semantic=not getattr(args, "no_semantic", False), max_questions=args.model_budget,
                                 seconds=args.model_timeout, thresholds=getattr(args, "thresholds", None) or {})
    for level, text in outcome.notes:
        say(level, f"--model-checks: {text}")
    return outcome.applied_to(findings)


def describe(config: Config | None) -> str:
    """For ``storytransformer rules``: whether ``check --model-checks`` would run the model rules here."""
    from ..engine.judge import availability

    ok, what = availability(config or Config())
    return f"runs with `check --model-checks` on the {what}" if ok else \
        f"would run with `check --model-checks`, but {what.removeprefix('no engine: ')}"

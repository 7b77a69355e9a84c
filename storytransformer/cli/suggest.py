"""``storytransformer suggest PATH`` and ``storytransformer suggest merge|rewrite|split FILE:LINE...``:
grounded merge, rewrite and split proposals from the language model, each with the stories it came
from. Nothing ungrounded is ever printed.

A merge shows its first proposal and at most three alternatives; for duplicates (ST601-ST603, or
``--duplicates``) what one source says in other words is listed as said by it rather than repeated.
A line that is not a story gets skeletons built from its own words with placeholders for the user
(no model: placeholders are never filled with invented content)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..checking import CheckOptions, check, is_merge_candidate
from ..config import ConfigError, load_config
from ..fixes import PLACEHOLDERS
from ..places import relative_path, story_at, story_place

KINDS = ("merge", "rewrite", "split")
REWRITE_PREFIXES = ("ST1", "ST3", "ST4", "ST5")
MAX_PROPOSALS = 4  # the first proposal and at most three alternatives


def register(sub) -> None:
    p = sub.add_parser("suggest", help="propose merged, rewritten or split stories (language model)",
                       usage="%(prog)s [options] PATH\n       %(prog)s [options] merge|rewrite|split FILE:LINE...",
                       description="Propose merged, rewritten or split stories. Every proposal is checked by the "
                                   "core rules and uses only words of its source stories. With PATH: proposals "
                                   "for the stories with findings. With a kind and FILE:LINE (1-based, any line of "
                                   "the story): that merge of two or more stories, or a rewrite or split of each.")
    p.add_argument("targets", nargs="+", metavar="PATH | KIND FILE:LINE",
                   help="a story file or a directory; or merge|rewrite|split followed by FILE:LINE...")
    p.add_argument("--story", help="only proposals involving this story: its id, or FILE:LINE (1-based)")
    p.add_argument("--kind", choices=KINDS, help="only this kind of proposal (default: all)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--config", type=Path, help="configuration file")
    p.add_argument("--limit", type=int, default=10, help="at most this many stories or pairs per kind (default 10)")
    p.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (default: no limit)")
    p.add_argument("--max-proposals", type=int, default=MAX_PROPOSALS, metavar="N",
                   help=f"at most N distinct proposals per merge, rewrite or split, best first "
                        f"(default {MAX_PROPOSALS}: the first and three alternatives)")
    p.add_argument("--no-generate", action="store_true", help="rank the deterministic candidates only (faster)")
    p.add_argument("--show-rejected", action="store_true", help="also print rejected proposals with the reasons")
    p.add_argument("--duplicates", action="store_true",
                   help="merge: the stories ask for the same thing in other words; keep one wording of each part "
                        "and list the other's as said by it (duplicate findings ST601-ST603 imply this)")
    p.add_argument("--context", action="store_true",
                   help="merges: put the related stories of the backlog into the prompt (long context; slower)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    first = args.targets[0]
    if first in KINDS and len(args.targets) > 1 and not Path(first).exists():
        return run_at(args, first, args.targets[1:])
    if len(args.targets) != 1:
        print(f"storytransformer: error: give one PATH, or {'|'.join(KINDS)} followed by FILE:LINE...", file=sys.stderr)
        return 2
    args.path = Path(first)
    return run_path(args)


def run_path(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        config = load_config(args.config, start=args.path if args.path.exists() else Path("."))
    except ConfigError as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    if not args.path.exists():
        print(f"storytransformer: error: {args.path}: no such file or directory", file=err)
        return 2
    if args.no_generate:
        config.engine.generate = False
    # the one check entry point: the same findings as `check`, semantic ones only when merges are wanted
    result = check(config, [str(args.path)], options=CheckOptions(semantic=args.kind in (None, "merge")),
                   say=lambda level, message: print(f"storytransformer: {level}: {message}", file=err))
    ws = result.workspace
    for p in result.problems:
        print(p, file=err)
    stories = {s.id: s for s in ws.stories()}
    if args.story and args.story not in stories:
        args.story = _story_at(args.story, stories.values()) or args.story
    if args.story and args.story not in stories:
        print(f"storytransformer: error: no story with id {args.story!r} under {args.path}", file=err)
        return 2
    jobs = _jobs(result.findings, stories, args)
    return _propose_and_print(args, config, jobs, list(ws.stories()))


def run_at(args: argparse.Namespace, kind: str, places: list[str]) -> int:
    """``suggest KIND FILE:LINE...``: the stories at those lines, one merge or one job per story."""
    from ..workspace import Workspace

    err = sys.stderr
    files = []
    for where in places:
        path, _, line = where.rpartition(":")
        if not path or not line.isdigit() or int(line) < 1:
            print(f"storytransformer: error: {where!r}: expected FILE:LINE (1-based line number)", file=err)
            return 2
        if not Path(path).is_file():
            print(f"storytransformer: error: {path}: no such file", file=err)
            return 2
        files.append(Path(path))
    if kind == "merge" and len(places) < 2:
        print("storytransformer: error: a merge needs two or more FILE:LINE", file=err)
        return 2
    try:
        config = load_config(args.config, start=files[0].parent)
    except ConfigError as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    if args.no_generate:
        config.engine.generate = False
    ws = Workspace.from_paths(list(dict.fromkeys(files)), config)
    for p in ws.problems.values():
        print(p, file=err)
    stories = {s.id: s for s in ws.stories()}
    picked = []
    for where in places:
        sid = _story_at(where, stories.values())
        if sid is None:
            print(f"storytransformer: error: {where}: no story on that line", file=err)
            return 2
        if sid not in [s.id for s in picked]:
            picked.append(stories[sid])
    if kind == "merge":
        if len(picked) < 2:
            print("storytransformer: error: a merge needs two different stories", file=err)
            return 2
        jobs = [("merge", picked, [])]
    else:
        findings = _deterministic(ws)
        wanted = ("ST2",) if kind == "split" else REWRITE_PREFIXES
        jobs = [(kind, [s], [f for f in findings if f.story_id == s.id and f.code.startswith(wanted)]) for s in picked]
    return _propose_and_print(args, config, jobs, list(ws.stories()))


def _propose_and_print(args, config, jobs, backlog) -> int:
    from ..engine import Deadline, DeadlineExceeded, EngineError, create_engine

    from ..similarity.benefits import same_need_by_meaning
    from ..similarity.merge import SAME_NEED_CODES
    from ..similarity.needs import keeps_every_need, story_label

    from ..engine.proposer import Outcome

    err = sys.stderr
    deadline = Deadline.after(args.timeout) if args.timeout > 0 else Deadline.never()
    out: list[dict] = []
    none: list[str] = []  # for each job without a proposal: where, and why
    engine = duplicates = None
    try:
        for kind, sources, story_findings in jobs:
            same_need = kind == "merge" and (getattr(args, "duplicates", False)
                                             or any(f.code in SAME_NEED_CODES for f in story_findings))
            if same_need:  # a benefit is set aside only for one that says it, judged by meaning
                duplicates = duplicates or same_need_by_meaning(config=config.similarity)
                same_need = duplicates
            skeleton = skeleton_proposals(sources[0]) if kind != "merge" else []
            if skeleton:
                found = skeleton  # no model: nothing may fill the placeholders
            elif kind == "merge":
                engine = engine or create_engine(config)
                found = engine.propose_merge(sources, deadline=deadline, include_rejected=True,
                                             backlog=backlog if args.context else None, same_need=same_need)
            elif kind == "split":
                engine = engine or create_engine(config)
                found = engine.propose_split(sources[0], story_findings, deadline=deadline, include_rejected=True)
            else:
                engine = engine or create_engine(config)
                found = engine.propose_rewrite(sources[0], story_findings, deadline=deadline, include_rejected=True)
            root = config.root
            where = {story_label(s): story_place(s, root) for s in sources}
            outcome = Outcome.of(kind, found, len(sources))
            if not outcome.accepted:
                none.append(_why_none(kind, sources, outcome.reason, same_need, root))
            if not args.show_rejected:
                found = list(outcome.accepted)
            apart = _benefits_kept_apart(sources, same_need, root) if kind == "merge" and same_need else []
            for p in top_proposals(found, getattr(args, "max_proposals", MAX_PROPOSALS)):
                said = [] if kind != "merge" or not p.accepted else [
                    _renamed(str(x), where) for x in keeps_every_need(p.text, sources, same_need).said]
                out.append({**p.to_dict(), "said_by_other_source": said, "benefits_kept_apart": apart, "sources": [
                    {"id": s.id, "file": s.file, "line": s.line + 1, "place": story_place(s, root), "text": s.text}
                    for s in sources]})
    except DeadlineExceeded:
        print(f"storytransformer: warning: stopped after {args.timeout:g} s; proposals so far are shown", file=err)
    except EngineError as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    if args.format == "json":
        print(json.dumps(out, indent=2, default=str))
        for line in none:
            print(line, file=err)
    else:
        print("\n\n".join(filter(None, [_text(out), *none])) or "no grounded proposals")
    return 0


def _benefits_kept_apart(sources, duplicates, root) -> list[str]:
    """For duplicates: each two benefits the judge finds to state different goals, which every merge
    therefore keeps ("US-1 at b.txt:1's 'I do not pay a late fee' and ... state different goals")."""
    from ..similarity.benefits import benefits_kept_apart

    return [f"{story_place(a, root)}'s {ea!r} and {story_place(b, root)}'s {eb!r} state different goals"
            for a, ea, b, eb in benefits_kept_apart(sources, duplicates)]


def _why_none(kind: str, sources, reason: str, same_need: bool, root) -> str:
    """One job's 'no grounded proposal' line: its stories by file:line, why, and for a merge of stories
    not known to be duplicates what ``--duplicates`` would change."""
    places = ", ".join(story_place(s, root) for s in sources)
    line = f"{places}: no grounded {kind}: {reason or 'no proposal passed the rules'}"
    if kind == "merge" and not same_need and "kept every part" in reason:
        line += ("\n  if these stories ask for the same thing in other words, --duplicates lets one wording "
                 "stand for the other (the merge then lists what it sets aside)")
    return line


def skeleton_proposals(story) -> list:
    """For a line that is not a story (or has no role): the skeletons of :func:`storytransformer.fixes.skeletons`,
    as accepted proposals when every word but the placeholders is the line's own; [] otherwise."""
    from ..engine.contract import Grounding, Proposal
    from ..fixes import skeletons
    from ..words import content_words, source_text

    lines = skeletons(story)
    if not lines:
        return []
    own = set(content_words(story.text)) | set(content_words(source_text(story)))
    bare = " ".join(lines)
    for placeholder in PLACEHOLDERS:
        bare = bare.replace(placeholder, " ")
    invented = [w for st, w in content_words(bare).items() if st not in own]
    reasons = (f"invents content not in the source story: {', '.join(map(repr, invented))}",) if invented else ()
    kind = "rewrite" if len(lines) == 1 else "split"
    prov = {("means" if len(lines) == 1 else f"{i + 1}.means"): story.id for i in range(len(lines))}
    return [Proposal(kind, lines, (story.id,), Grounding(not invented, reasons, tuple(invented)), prov, "skeleton")]


def _renamed(text: str, where: dict[str, str]) -> str:
    """``text`` with each story's place as the reader named it replaced by its place for the user
    (whole names only: US-1 is not the start of US-10)."""
    if not where:
        return text
    names = re.compile("|".join(rf"(?<![\w-]){re.escape(old)}(?![\w-])" for old in sorted(where, key=len, reverse=True)))
    return names.sub(lambda m: where[m.group(0)], text)


def top_proposals(found: list, limit: int = MAX_PROPOSALS) -> list:
    """At most ``limit`` accepted proposals, in the engine's order (best first), none the same as an
    earlier one but for case, spacing or punctuation; rejected ones (``--show-rejected``) after them."""
    seen: set[tuple] = set()
    accepted, rejected = [], []
    for p in found:
        if not p.accepted:
            rejected.append(p)
            continue
        key = tuple(" ".join(re.findall(r"[\w']+", s.lower())) for s in p.stories)
        if key in seen or len(accepted) >= max(1, limit):
            continue
        seen.add(key)
        accepted.append(p)
    return accepted + rejected


def _story_at(where: str, stories) -> str | None:
    """The id of the story at ``FILE:LINE`` (1-based line, any line of the story)."""
    found = story_at(where, stories)
    return found.id if found is not None else None


def _jobs(findings, stories, args) -> list[tuple[str, list, list]]:
    kinds = (args.kind,) if args.kind else KINDS
    jobs: list[tuple[str, list, list]] = []
    by_story: dict[str, list] = {}
    for f in findings:
        by_story.setdefault(f.story_id, []).append(f)
    if "merge" in kinds:
        pairs: dict[tuple[str, str], list] = {}  # each pair with the findings that make it a merge candidate
        for f in findings:
            if not is_merge_candidate(f):
                continue
            for r in f.related:
                pair = tuple(sorted((f.story_id, r.story_id)))
                if pair[0] != pair[1] and all(i in stories for i in pair):
                    if not args.story or args.story in pair:
                        pairs.setdefault(pair, []).append(f)
        for (a, b), why in list(pairs.items())[: args.limit]:
            jobs.append(("merge", [stories[a], stories[b]], why))
    for kind, wanted in (("split", ("ST2",)), ("rewrite", REWRITE_PREFIXES)):
        if kind not in kinds:
            continue
        picked = [sid for sid, fs in by_story.items() if sid in stories and any(f.code.startswith(wanted) for f in fs)
                  and (not args.story or sid == args.story)]
        for sid in picked[: args.limit]:
            jobs.append((kind, [stories[sid]], [f for f in by_story[sid] if f.code.startswith(wanted)]))
    return jobs


def _deterministic(ws) -> list:
    """The deterministic findings of the stories picked by FILE:LINE (rewrite and split need no semantic ones)."""
    from ..checking import check_workspace

    return check_workspace(ws, semantic=False)


def _text(out: list[dict]) -> str:
    """Each proposal headed by where its stories are (file:line, the story's own id where the format
    gives one), never by the ids the readers make up."""
    blocks = []
    rank: dict[tuple, int] = {}
    for p in out:
        head = p["sources"][0]
        where = {s["id"]: s.get("place") or f"{relative_path(s['file'])}:{s['line']}" for s in p["sources"]}
        places = ", ".join(where.get(i, i) for i in p["source_ids"])
        score = "" if p["score"] is None else f"  (score {p['score']:.3f})"
        status = "" if p["accepted"] else "  REJECTED"
        n = rank[tuple(p["source_ids"])] = rank.get(tuple(p["source_ids"]), 0) + (1 if p["accepted"] else 0)
        which = "" if not p["accepted"] or n == 1 else f"  alternative {n - 1}"  # the first is the proposal
        lines = [f"{relative_path(head['file'])}:{head['line']}: {p['kind']} of {places} [{p['origin']}]{score}{status}{which}"]
        lines += [f"  + {s}" for s in p["stories"]]
        lines += [f"  said by the other source: {x}" for x in p.get("said_by_other_source", [])]
        if p["accepted"] and n == 1:  # once, with the first proposal
            lines += [f"  both benefits kept: {x}" for x in p.get("benefits_kept_apart", [])]
        blanks = [b for b in PLACEHOLDERS if any(b in s for s in p["stories"])]
        if blanks:
            lines.append(f"  fill in {' and '.join(blanks)} yourself: {'it is' if len(blanks) == 1 else 'they are'} "
                         "not in the line")
        if p["provenance"]:
            lines.append("  from: " + ", ".join(f"{k} <- {_places(v, where)}" for k, v in p["provenance"].items()))
        lines += [f"  reason: {r}" for r in p["grounding"]["reasons"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _places(ids: str, where: dict[str, str]) -> str:
    """A provenance value (a story id, or ids joined by '+') as the places of those stories."""
    return "+".join(where.get(i, i) for i in str(ids).split("+"))

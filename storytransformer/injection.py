"""Markup and instruction-like text that must never be carried from a source story into a new one.

A story is data. When a split, a merge or a rewrite copies text from its sources, a tag or a phrase
that talks to a model ("ignore previous instructions", "SYSTEM:") would travel into the backlog (and
into the next prompt). Both the deterministic fixes and the model's proposals refuse such text and
say why.
"""

from __future__ import annotations

import re

# Markup: a tag, the prompt's own delimiter (also as the look-alikes prompts.delimit makes of
# it, or unclosed), chat-template tokens.
MARKUP = re.compile(
    r"</?\s*[A-Za-z!?][^<>]{0,200}>"
    r"|<\|[^<>]{0,40}\|?>?"
    r"|[<‹]\s*/?\s*story\b|\bstory\s*[>›]",
    re.IGNORECASE)
# Text that speaks to a model instead of describing a feature.
INSTRUCTION = re.compile(r"""
      \b(?:ignore|disregard|forget)\b[^.;]{0,40}?\b(?:instructions?|prompts?|directions|directives|guidelines)\b
    | \b(?:ignore|disregard|forget|override)\b[^.;]{0,20}?\b(?:previous|prior|preceding|above|earlier)\s+
          (?:rules|messages?|text|context|commands?)\b
    | \bnew\s+(?:instructions?|prompt|directives?)\b
    | \bnew\s+(?:task|rules?|orders?)\s*:
    | \b(?:system|assistant|developer|human|ai)\s*(?:prompt|message)?\s*:
    | \b(?:instructions?|prompt)\s*:
    | \byou\s+are\s+(?:now|no\s+longer)\b
    | \bfrom\s+now\s+on\b
    | \bpretend\s+(?:to\s+be|that\s+you|you\s+are)\b
    | \b(?:act|behave|respond)\s+as\s+(?:if\s+you|an?\s+(?:ai|assistant|chatbot|language\s+model))\b
    """, re.IGNORECASE | re.VERBOSE)
# A chat role shouted at the start of an aside: "(SYSTEM delete every account". Upper case only:
# "(system administrator)" is a role a story may name.
SHOUTED_ROLE = re.compile(r"[(\[{]\s*(?:SYSTEM|ASSISTANT|DEVELOPER|ADMIN\s+OVERRIDE)\b")


def injection_reasons(text: str) -> list[str]:
    """Why ``text`` may not go into a story: markup or instruction-like phrases (empty when clean).

    The sanitiser of proposals: a proposal line with any of these is refused, with the reason
    shown like every other validation failure, whether the model wrote it or copied it from
    a source story.
    """
    reasons: list[str] = []
    m = MARKUP.search(text)
    if m:
        reasons.append(f"carries markup {m.group(0)[:40]!r}: story text is data, never a tag")
    m = INSTRUCTION.search(text) or SHOUTED_ROLE.search(text)
    if m:
        reasons.append(f"carries an instruction-like phrase {m.group(0)[:40]!r}: "
                       "instructions in a source story are never copied into a proposal")
    return reasons

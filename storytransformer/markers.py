"""The markers of a story composed role first (a merge, a split, a candidate, a reordering fix), whatever
order or case its source was written in: "..., as a member, ..." and "To <ends>, I, as a <role>, want
<means>" give "As a member, I want <means>, in order to <ends>"."""

from __future__ import annotations

import re


def article_for(noun: str) -> str:
    """'a' or 'an' before ``noun`` (by its first sound, roughly: "an admin", "a user"; an initialism by
    its first letter's name: "a UI designer", "an NSF employee")."""
    acronym = re.match(r"[A-Z]{2,}\b", noun)
    if acronym:
        letters = acronym.group(0)
        if letters[0] in "AEIO":
            return "an"
        if letters[0] == "U" or re.search(r"[AEIOUY]", letters[1:-1]):  # "a UI"; said as a word: "a FABS user"
            return "a"
        return "an" if letters[0] in "FHLMNRSX" else "a"  # spelt out: "an NSF employee", "an MRI operator"
    vowel = re.match(r"[aeiouAEIOU]", noun) and not re.match(r"(?i)u[bcfhjkqrstn][aeiou]|user|uni|one|eu", noun)
    return "an" if vowel else "a"


def lead_role(marker: str, role: str) -> str:
    """The role marker that starts a story: capitalised, 'As a' / 'As an' agreeing with ``role``;
    other markers ('As the') kept."""
    marker = " ".join(marker.split()) or "As a"
    words = marker.split()
    if len(words) == 2 and words[0].lower() == "as" and words[1].lower() in ("a", "an"):
        return f"As {article_for(role)}"
    return marker[:1].upper() + marker[1:]


def means_with_subject(marker: str) -> str:
    """The means marker with its subject ("want to" after "I, as a member," gives "I want to"), 'I'
    capitalised."""
    marker = " ".join(marker.split()) or "I want to"
    m = re.match(r"(?i)(I|we)\b", marker)
    if m is None:
        return f"I {marker}"
    return ("I" if m.group(1).lower() == "i" else m.group(1)) + marker[m.end():]


def trailing_ends(marker: str) -> str:
    """The ends marker after the means: lower case, a leading "To" as "in order to" (", to ..." after the
    means would read as part of it)."""
    marker = " ".join(marker.split()).lower() or "so that"
    return "in order to" if marker == "to" else marker


# The ends marker written a second time at the start of the ends ("so that, so that we can", "so that so they
# can"); "so many", "so much", ... are words of the ends, not a marker.
REPEATED_ENDS_MARKER = re.compile(r"(?i)^[\s,]*(?:so\s+that|so(?!\s+(?:many|much|few|little|far|long)\b))\b[\s,]*(?=\S)")


def repeated_ends_marker(ends: str) -> re.Match | None:
    """Where the ends text starts with its marker again (the match covers it and the space after), else None."""
    return REPEATED_ENDS_MARKER.match(ends)

"""The backlog's dominant template, kept current while documents are edited.

The uniformity rule (ST501) judges each story against the template most stories
use. Recounting every story on each keystroke costs tens of milliseconds on a
large workspace, so the counts are kept per file and updated with the edited
file only; the core's template is recomputed (and everything re-checked) only
when a verdict of the rule could change.
"""

from __future__ import annotations

from collections import Counter

from storytransformer.rules.context import Template, means_family, role_family
from storytransformer.rules.uniform import MIN_SHARE, MIN_STORIES


def verdict(t: Template) -> tuple:
    """What ST501 decides from a template (its shares only matter against the threshold)."""
    if t.counted < MIN_STORIES:
        return (False,)
    return (True, t.role if t.role_share >= MIN_SHARE else None, t.means if t.means_share >= MIN_SHARE else None)


class TemplateTally:
    """Role and means marker families counted per file, summed over the workspace."""

    def __init__(self) -> None:
        self.per_file: dict[str, tuple[Counter, Counter]] = {}
        self.roles: Counter = Counter()
        self.means: Counter = Counter()

    @classmethod
    def of(cls, workspace) -> "TemplateTally":
        tally = cls()
        for path, source in workspace.files.items():
            tally.update(path, source)
        return tally

    def update(self, path: str, source) -> None:
        """``path`` now holds ``source`` (None: no longer in the workspace)."""
        old = self.per_file.pop(path, None)
        if old is not None:
            self.roles -= old[0]
            self.means -= old[1]
        if source is None:
            return
        roles, means = Counter(), Counter()
        for s in source.stories:
            if s.role and s.means:
                roles[role_family(s.role.marker)] += 1
                means[means_family(s.means.marker)] += 1
        self.per_file[path] = (roles, means)
        self.roles += roles
        self.means += means

    def verdict(self) -> tuple | None:
        """The rule's verdict from the counts; None when a tie makes the winner depend on story order."""
        n = sum(self.roles.values())
        if n < MIN_STORIES:
            return (False,)
        top_roles, top_means = self.roles.most_common(2), self.means.most_common(2)
        if any(len(top) == 2 and top[0][1] == top[1][1] for top in (top_roles, top_means)):
            return None
        (r, rc), (m, mc) = top_roles[0], top_means[0]
        return (True, r if rc / n >= MIN_SHARE else None, m if mc / n >= MIN_SHARE else None)

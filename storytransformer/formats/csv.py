"""CSV exports from issue trackers (Jira, Azure DevOps, Trello, spreadsheets).

The story is read from the first column whose header is one of the configured
story columns ("Summary", "Title", "User Story", ...); the id from the id
columns ("Issue key", "ID", ...); acceptance criteria from their column.
Positions point at the cell inside the file, quoted or not.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..lines import split_lines
from ..parse import Segment
from ..story import SourceFile
from .base import StoryBuilder, parse_suppression


@dataclass(frozen=True)
class CsvColumns:
    story: tuple[str, ...] = ("User Story", "Story", "Summary", "Title", "Name", "Description")
    id: tuple[str, ...] = ("Issue key", "Key", "ID", "Id", "Work Item ID", "Story ID")
    acceptance: tuple[str, ...] = ("Acceptance Criteria", "Acceptance criteria", "Microsoft.VSTS.Common.AcceptanceCriteria")
    suppress: tuple[str, ...] = ("storytransformer", "Lint", "Suppress")


class CsvFormatError(ValueError):
    pass


def _pick(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    return None


def _reader(text: str, header_line: str):
    delimiter = max(",;\t|", key=header_line.count)  # the header line tells the delimiter
    dialect = type("Exported", (csv.excel,), {"delimiter": delimiter})
    return csv.reader(io.StringIO(text, newline=""), dialect)


def has_story_column(text: str, names: tuple[str, ...]) -> bool:
    """Whether the header of the CSV ``text`` (its start is enough) has one of the story columns ``names``."""
    lines = split_lines(text[:65536])
    try:
        header = next(_reader(text[:65536], lines[0] if lines else ""))
    except (StopIteration, csv.Error):
        return False
    return _pick(header, names) is not None


def read_csv(path: str, text: str, columns: CsvColumns = CsvColumns()) -> SourceFile:
    lines = split_lines(text)
    builder = StoryBuilder(path, lines, "csv")
    source = SourceFile(path, lines, format="csv")
    reader = _reader(text, lines[0] if lines else "")
    try:
        header = next(reader)
    except StopIteration:
        return source
    story_col = _pick(header, columns.story)
    if story_col is None:
        raise CsvFormatError(
            f"no story column: the header has {', '.join(repr(h) for h in header[:12])}; "
            f"expected one of {', '.join(columns.story)} (set [tool.storytransformer.csv] story_columns)"
        )
    id_col = _pick(header, columns.id)
    ac_col = _pick(header, columns.acceptance)
    sup_col = _pick(header, columns.suppress)
    prev_line = reader.line_num  # physical lines consumed so far
    for row in reader:
        first, last = prev_line, reader.line_num  # this record spans lines [first, last)
        prev_line = reader.line_num
        if story_col >= len(row) or not row[story_col].strip():
            continue
        cell = row[story_col]
        segments = _locate(lines, first, last, cell)
        suppressed = frozenset()
        if sup_col is not None and sup_col < len(row):
            sup = parse_suppression(row[sup_col])
            suppressed = sup[1] if sup else frozenset()
        ac = tuple(a.strip(" -*") for a in row[ac_col].splitlines() if a.strip()) if ac_col is not None and ac_col < len(row) else ()
        sid = row[id_col].strip() if id_col is not None and id_col < len(row) and row[id_col].strip() else None
        story = builder.build(segments, story_id=sid, acceptance=ac, suppressed=suppressed)
        if story:
            source.stories.append(story)
    return source


def _locate(lines: list[str], first: int, last: int, cell: str) -> list[Segment]:
    """Segments (one per physical line) where the cell's text sits in the file."""
    cell_lines = split_lines(cell.strip()) or [cell.strip()]
    segments: list[Segment] = []
    line_no = first
    for part in cell_lines:
        part = part.strip()
        for j in range(line_no, max(last, line_no + 1)):
            if j >= len(lines):
                break
            k = lines[j].find(part)
            if k < 0 and '"' in part:
                k = lines[j].find(part.replace('"', '""'))
                if k >= 0:
                    part = part.replace('"', '""')
            if k >= 0:
                segments.append(Segment(j, k, part))
                line_no = j + 1
                break
    if not segments:  # unusual quoting: point at the record's first line
        segments.append(Segment(first, 0, cell.strip().replace("\n", " ")))
    return segments

"""The parts of each story as semantic tokens, against the real server over stdio."""

from __future__ import annotations

from lsprotocol import types

from storytransformer_server.lsp.story_tokens import TOKEN_TYPES

from .conftest import change, open_doc, start, until

STORIES = ("US-1: As a member 🙂, I want to renew a loan, so that I avoid a fee.\n"
           "Print the statistics\n"
           "As a librarian, I want to add a title.\n")


def decoded(data: list[int], lines: list[str], legend: list[str]) -> list[tuple[int, str, str]]:
    """(line, text, type) of each token, from LSP's relative encoding (UTF-16 columns)."""
    out, line, start = [], 0, 0
    for i in range(0, len(data), 5):
        dl, ds, length, kind, _ = data[i:i + 5]
        line, start = line + dl, (start + ds if dl == 0 else ds)
        units = lines[line].encode("utf-16-le")
        out.append((line, units[2 * start:2 * (start + length)].decode("utf-16-le"), legend[kind]))
    return out


async def test_roles_means_ends_and_markers_are_tokens_that_follow_edits(client, tmp_path):
    path = tmp_path / "loans.stories.txt"
    path.write_text(STORIES, "utf-8")
    result = await start(client, tmp_path)
    legend = result.capabilities.semantic_tokens_provider.legend.token_types
    assert list(legend) == TOKEN_TYPES
    u = open_doc(client, path)
    await until(lambda: u in client.diagnostics, what="the first check")
    doc = types.TextDocumentIdentifier(uri=u)

    tokens = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=doc))
    assert decoded(tokens.data, STORIES.splitlines(), legend) == [
        (0, "As a", "keyword"), (0, "member 🙂", "type"), (0, "I want to", "keyword"),
        (0, "renew a loan", "function"), (0, "so that", "keyword"), (0, "I avoid a fee", "string"),
        # line 1 is no story: no tokens
        (2, "As a", "keyword"), (2, "librarian", "type"), (2, "I want to", "keyword"), (2, "add a title", "function")]

    change(client, u, 2, 2, 37, 37, ", so that members can borrow it")
    text = STORIES.splitlines()
    text[2] = text[2][:37] + ", so that members can borrow it" + text[2][37:]
    tokens = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=doc))
    assert decoded(tokens.data, text, legend)[-2:] == [(2, "so that", "keyword"), (2, "members can borrow it", "string")]


def test_a_part_over_two_lines_is_coloured_line_by_line_from_its_first_character():
    from storytransformer.config import Config
    from storytransformer.formats import read_source
    from storytransformer_server.lsp.story_tokens import encode, story_spans

    text = "# Loans\n\nAs a member, I want to renew a loan\n  for longer, so that I avoid a fee.\n"
    (story,) = read_source("loans.md", text, Config()).stories
    lines = text.splitlines()
    got = decoded(encode(story_spans(story, lines)), lines, TOKEN_TYPES)
    assert (2, "renew a loan", "function") in got and (3, "for longer", "function") in got
    assert got[-1] == (3, "I avoid a fee", "string")

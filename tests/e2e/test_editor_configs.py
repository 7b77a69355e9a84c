"""The editor configurations docs/lsp.md shows are the files under docs/editors, and they cover every
format the server reads (the Neovim one is also run for real by test_neovim_lsp.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDITORS = ROOT / "docs" / "editors"
LSP_DOC = (ROOT / "docs" / "lsp.md").read_text("utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", LSP_DOC, re.S)


def test_the_docs_show_the_files_as_they_are():
    assert (EDITORS / "storytransformer.lua").read_text("utf-8") in blocks("lua")
    assert (EDITORS / "languages.toml").read_text("utf-8") in blocks("toml")


def test_neovim_attaches_to_the_filetype_of_every_format():
    lua = (EDITORS / "storytransformer.lua").read_text("utf-8")
    (listed,) = re.findall(r"M\.filetypes = \{([^}]*)\}", lua)
    assert set(re.findall(r'"(\w+)"', listed)) == {"text", "markdown", "cucumber", "csv"}


def test_helix_attaches_to_every_format():
    config = tomllib.loads((EDITORS / "languages.toml").read_text("utf-8"))
    assert config["language-server"]["storytransformer"]["args"] == ["lsp"]
    served = {}
    for lang in config["language"]:
        if "storytransformer" in lang["language-servers"]:
            served[lang["name"]] = lang.get("file-types", [])
    assert "markdown" in served  # Helix's own Markdown language, merged
    types = {t for ts in served.values() for t in ts}
    assert {"txt", "feature", "csv"} <= types

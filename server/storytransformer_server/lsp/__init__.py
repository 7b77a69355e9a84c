"""The StoryTransformer language server (pygls).

One module per LSP feature; each receives the shared :class:`.server_context.ServerContext` (state and
helpers) and none imports :mod:`.server`, which only creates the context and wires the features to it:

- :mod:`.scan`: the workspace scan (at start, on re-check, on folder and configuration changes)
- :mod:`.documents`: open documents, the core workspace and the lint worker
- :mod:`.diagnostics`: push and pull diagnostics, debounced per document
- :mod:`.code_actions`: quick fixes, "Merge with", "Rewrite with model" (resolved lazily)
- :mod:`.fix_all`: ``source.fixAll.storytransformer`` for fixes on save
- :mod:`.inline`: ``textDocument/inlineCompletion``
- :mod:`.commands`: ``workspace/executeCommand`` and the engine status notification
- :mod:`.configuration`: settings from the client, validated
- :mod:`.semantic`: semantic duplicates and overlaps from the daemon's similarity index
- :mod:`.model`: the adapter to the daemon that holds the language model
"""

from .server import create_server

__all__ = ["create_server"]

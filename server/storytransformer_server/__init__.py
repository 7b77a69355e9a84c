"""StoryTransformer's editor-facing processes: the language server (``lsp``) and the daemon (``daemon``).

Kept apart from the core library so ``storytransformer`` never imports pygls.
"""

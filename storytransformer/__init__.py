"""StoryTransformer: find and fix problems in backlogs of user stories.

The core library: story model, readers, quality rules and fixes. It imports no
editor, LSP or GPU library at import time.
"""

__version__ = "0.1.0"  # the one version string: pyproject.toml, the CLI, both servers and the caches read it

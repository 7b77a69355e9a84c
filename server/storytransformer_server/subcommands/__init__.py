"""The ``storytransformer`` subcommands that run or talk to the servers: ``lsp``, ``daemon``, ``engine``.

They live here, next to what they start, so the core (``storytransformer``) never imports the servers;
the core's command line finds them by name (:data:`storytransformer.cli.SERVER_COMMAND_MODULES`) and
says a command is unavailable when this package is not installed.
"""

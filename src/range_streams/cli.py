"""Command line: ``range-streams`` (and ``python -m range_streams``).

The entry point stays here (``range_streams.cli:main``); the commands live in ``_cli``.
"""

from ._cli import ExitCode, main

__all__ = ["ExitCode", "main"]

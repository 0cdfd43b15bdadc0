"""`python -m engine.migrations [--url URL] <alembic command ...>`: the alembic CLI without an ini file."""

from __future__ import annotations

import sys

from alembic.config import CommandLine

from engine.migrations import alembic_config
from engine.settings import default_database_url


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    url = default_database_url()
    if argv[:1] == ["--url"] and len(argv) > 1:
        url, argv = argv[1], argv[2:]
    cli = CommandLine(prog="python -m engine.migrations [--url URL]")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(url), options)


if __name__ == "__main__":
    main()

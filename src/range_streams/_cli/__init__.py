"""The ``range-streams`` command line (also ``python -m range_streams``).

Commands: ``info``, ``ls``, ``cat``, ``extract``, ``get``, ``serve``, ``demo``, ``cache``; see
docs/cli.md for the exit codes and the ``--json`` schemas. Every command that talks to a
server creates one httpx client, hooks the ``--trace`` printer into it, and passes it to
the library, so what is printed is exactly what was sent.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ._cache import CACHED_COMMANDS, cache_command, cache_for, report_cache
from ._commands import cat, extract_command, info, ls, serve
from ._common import Console, ExitCode, TraceLog, client_options, exit_code_for, message_for
from ._demo import demo
from ._get import get, parse_size

__all__ = ["ExitCode", "build_parser", "execute", "main"]

Handler = Callable[[argparse.Namespace, Console, TraceLog], int]

EPILOG = """\
exit codes: 0 ok, 1 other error, 2 usage (bad arguments, URL or --range), 3 network,
4 HTTP error status, 5 server without range support, 6 no such member, 130 interrupted.
"""


def _demo(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    return demo(console, execute)


def build_parser() -> argparse.ArgumentParser:
    # --trace is accepted before or after the command; SUPPRESS keeps a subcommand's
    # default from overwriting a --trace given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--trace",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print every HTTP request to stderr (method, Range, status, Content-Range, bytes)",
    )
    requests = common.add_argument_group("request options (as curl spells them)")
    requests.add_argument(
        "-H",
        "--header",
        action="append",
        default=argparse.SUPPRESS,
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable)",
    )
    requests.add_argument(
        "-u", "--user", default=argparse.SUPPRESS, metavar="USER:PASSWORD", help="Basic auth"
    )
    requests.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="give up on a connection or a read after this long (default 30, connect 10)",
    )
    requests.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        default=argparse.SUPPRESS,
        help="do not verify the server's TLS certificate",
    )
    requests.add_argument(
        "--cacert", default=argparse.SUPPRESS, metavar="FILE", help="CA bundle to verify with"
    )
    requests.add_argument(
        "--no-redirects",
        action="store_true",
        default=argparse.SUPPRESS,
        help="treat a redirect as an error instead of following it",
    )
    common.add_argument(
        "--cache",
        dest="cache_dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="keep and reuse the blocks read in this cache directory (default: the"
        " RANGE_STREAMS_CACHE environment variable; see docs/Cache.md)",
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        default=argparse.SUPPRESS,
        help="read through no cache, whatever RANGE_STREAMS_CACHE says",
    )
    parser = argparse.ArgumentParser(
        prog="range-streams",
        description="Read remote files by HTTP range requests: only the bytes you need.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    sub = command("info", info, "size, validators, server, and which range forms it supports")
    sub.add_argument("url")
    sub.add_argument("--json", action="store_true", help="print JSON (schema in docs/cli.md)")

    sub = command("ls", ls, "list a zip, .conda or tar (members) or a PNG (chunks)")
    sub.add_argument("url")
    sub.add_argument("--json", action="store_true", help="print JSON (schema in docs/cli.md)")

    sub = command("cat", cat, "write the file, or a slice of it, to stdout")
    sub.add_argument("url")
    sub.add_argument(
        "--range",
        metavar="START:STOP",
        help="a Python-style slice; negative counts from the end (write --range=-22: )",
    )

    sub = command("extract", extract_command, "extract members of a zip, .conda or tar")
    sub.add_argument("url")
    sub.add_argument("members", nargs="*", metavar="MEMBER", help="names to extract (default all)")
    sub.add_argument("-o", "--output", default=".", metavar="DIR", help="destination directory")

    sub = command("get", get, "download over several connections, resumable")
    sub.add_argument("url")
    sub.add_argument("-o", "--output", metavar="FILE", help="target (default: the URL's name)")
    sub.add_argument("-c", "--connections", type=int, default=4, help="parallel requests (4)")
    sub.add_argument(
        "--segment-size", type=parse_size, metavar="SIZE", help="bytes per request, e.g. 8M"
    )
    sub.add_argument("--limit-rate", type=parse_size, metavar="SIZE", help="bytes/s, e.g. 500K")
    sub.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: only when stderr is a terminal)",
    )

    sub = command("serve", serve, "serve a directory with range support until Ctrl-C")
    sub.add_argument("directory", nargs="?", default=".", metavar="DIR")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8000, help="0 picks a free port (8000)")

    command("demo", _demo, "serve a generated zip on 127.0.0.1, then info, ls and extract it")

    sub = command("cache", cache_command, "show (info) or empty (clear) the cache directory")
    sub.add_argument("action", choices=["info", "clear"])
    sub.add_argument("--json", action="store_true", help="print JSON (info)")
    return parser


def execute(argv: Sequence[str], console: Console, trace: TraceLog | None = None) -> int:
    """Run one command line; returns the exit code (never raises for a command's error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse has printed usage and the error
        return exit_.code if isinstance(exit_.code, int) else ExitCode.USAGE
    if args.command is None:
        parser.print_help(console.out)
        return ExitCode.USAGE
    if trace is None:
        trace = TraceLog(console.err if getattr(args, "trace", False) else None)
    handler: Handler = args.handler
    try:
        args.client_options = client_options(args)
        args.shared_cache = cache = cache_for(args) if args.command in CACHED_COMMANDS else None
        before = cache.stats() if cache is not None else None
        try:
            return handler(args, console, trace)
        finally:
            report_cache(cache, trace, before)
    except BrokenPipeError:
        _silence_stdout(console)  # `| head` closed the pipe: stop quietly, like cat does
        return ExitCode.OK
    except (Exception, KeyboardInterrupt) as error:
        console.warn(f"error: {message_for(error, getattr(args, 'url', None))}")
        return exit_code_for(error)


def _silence_stdout(console: Console) -> None:
    if console.out is sys.stdout:
        # The interpreter flushes stdout at exit; a closed pipe would fail that flush too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    return execute(sys.argv[1:] if argv is None else argv, Console())

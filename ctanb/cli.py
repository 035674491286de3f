"""The ``ctanb`` command line.

Each area registers its own command group in its own module; this file only
assembles them, importing each lazily so that ``ctanb --help`` stays fast.

- ``ctanb archive ...``  build, fill and serve the embedded archive (:mod:`ctanb.archive.cli`)
- ``ctanb prov ...``     provenance: show, graph, query, verify, redo (:mod:`ctanb.provenance.cli`)
- ``ctanb up``           the main job: build, serve, open JupyterLab (:mod:`ctanb.launcher`)
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import click

from ._errors import CtanbError

# name -> (module, attribute, help); the module is imported only when the group runs.
_GROUPS: dict[str, tuple[str, str, str]] = {
    "archive": ("ctanb.archive.cli", "archive", "Build, fill and serve the embedded archive."),
    "prov": ("ctanb.provenance.cli", "prov", "Show, query, verify and redo provenance."),
    "run": ("ctanb.analysis.cli", "run", "Run a whole analysis from a YAML config."),
    "up": ("ctanb.launcher", "up", "Build and serve the embedded archive, open the notebooks."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_GROUPS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _GROUPS:
            module, attr, _ = _GROUPS[name]
            return getattr(import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _GROUPS[name][2]) for name in sorted(_GROUPS)]
        rows += [
            (name, cmd.get_short_help_str())
            for name in super().list_commands(ctx)
            if (cmd := super().get_command(ctx, name)) is not None
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup)
@click.version_option(package_name="ctanb")
def cli() -> None:
    """ctanb: search, look at and analyse Cherenkov-telescope data with provenance."""


def register(command: click.Command) -> click.Command:
    """Add a top-level command (used by modules that define one, e.g. ``ctanb run``)."""
    cli.add_command(command)
    return command


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn a :class:`CtanbError` into a one-line message."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = cli.main(args=argv, prog_name="ctanb", standalone_mode=False)
    except CtanbError as exc:
        click.echo(f"ctanb: error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("ctanb: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One prefix for every error: the usage line, then "ctanb: error: ..." (not click's "Error:").
        if exc.ctx is not None and type(exc).__name__ != "NoArgsIsHelpError":
            click.echo(exc.ctx.get_usage(), err=True)
            help_option = exc.ctx.command.get_help_option(exc.ctx)
            if help_option is not None:
                click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
        elif exc.ctx is not None:  # a bare group: its help, as click shows it
            click.echo(exc.ctx.get_help(), err=True)
            sys.exit(exc.exit_code)
        click.echo(f"ctanb: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"ctanb: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # never a traceback for a user; CTANB_DEBUG=1 shows one
        if os.environ.get("CTANB_DEBUG"):
            raise
        click.echo(f"ctanb: error: unexpected problem: {exc or 'internal error'}", err=True)
        sys.exit(1)
    if isinstance(code, int) and code != 0:
        sys.exit(code)

"""Fresh-eyes trial 5, findings 15 and 16, the texts a new user reads first: the README's
settings table and archive recipe, and an example in every command's help."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ctanb.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_settings_table_names_the_settings_users_set():
    table = "\n".join(line for line in README.splitlines() if line.startswith("| `CTANB_"))
    for name in ("CTANB_DATA", "CTANB_HOME", "CTANB_TAP_URL", "CTANB_TOKEN", "CTANB_PRODUCTS",
                 "CTANB_PROV_URL", "CTANB_JOBS_URL", "CTANB_OFFLINE"):  # fmt: skip
        assert f"| `{name}" in table, f"{name} is not in the README settings table"


def test_readme_archive_recipe_builds_every_collection_the_tutorials_use():
    section = README.split("## The embedded archive", 1)[1].split("\n## ", 1)[0]
    first = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    assert "ctanb archive build --db archive.db" in first, first
    assert "ctanb archive serve --db archive.db" in first


def _commands(command: click.Command, prog: str):
    if isinstance(command, click.Group):
        with click.Context(command) as ctx:
            for name in command.list_commands(ctx):
                yield from _commands(command.get_command(ctx, name), f"{prog} {name}")
    else:
        yield prog, command


def test_every_command_of_archive_prov_and_run_has_an_example():
    missing = []
    for prog, command in _commands(cli, "ctanb"):
        if prog.split()[1] in ("archive", "prov", "run") and prog not in (
            "ctanb prov key", "ctanb prov trust",  # no argument to show
        ):  # fmt: skip
            if "Example" not in (command.help or ""):
                missing.append(prog)
    assert missing == [], f"no example in the help of {missing}"


def test_command_summaries_are_not_cut_off():
    """The summaries of ``ctanb archive --help``, ``ctanb prov --help`` and of the CLI
    reference (sphinx-click cuts at 45 characters) are whole sentences."""
    cut = [prog for prog, command in _commands(cli, "ctanb")
           if len(prog.split()) == 3 and command.get_short_help_str(limit=45).endswith("...")]  # fmt: skip
    assert cut == [], f"summaries cut off in --help: {cut}"

"""Help pages as operators expect them: a plain flag (`--auto-approve`) shows no value placeholder.

typer 0.29's rich help prints every option's type, so a flag reads
`--auto-approve <bool>` as if it took a value. A flag's metavar set to the
empty string prints nothing there; it is used nowhere else (a flag never
takes a value, so no usage line or error message shows it).
"""

from __future__ import annotations

from collections.abc import Iterable

import typer.core
from typer._click import Context, Parameter
from typer._click.core import Command


def _plain(params: Iterable[Parameter | None]) -> None:
    for param in params:
        if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


class PlainFlagsGroup(typer.core.TyperGroup):
    """A command group whose own flags, and those of every command it hands out, show no placeholder."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        _plain(params)
        return params

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain([*command.params, command.get_help_option(ctx)])
        return command

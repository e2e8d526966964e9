"""``gridhall import city``: regions, grids, units and people from a city folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import TaskID

from cli.common import cli_settings, console, err, fail, open_sessions, progress_bar, require_backends
from cli.db import upgrade_schema
from dashboard.settings import Settings

if TYPE_CHECKING:
    from dashboard.store.cityimport import ImportSummary

import_app = typer.Typer(help="Import reference data.", no_args_is_help=True)


@import_app.command("city")
def import_city(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="City folder (docs/city-data.md)."),
) -> None:
    """Import regions, grids, units and people from DIRECTORY; all or nothing."""
    settings = cli_settings()
    require_backends(settings, redis_too=False)
    upgrade_schema(settings)
    summary = import_city_folder(settings, directory)
    console.print(str(summary), highlight=False, soft_wrap=True)


def import_city_folder(settings: Settings, directory: Path) -> ImportSummary:
    """Import a city folder into the database, all or nothing; a bad folder is one line and exit 1."""
    from dashboard.store.cityimport import CityImportError
    from dashboard.store.cityimport import import_city as do_import

    tasks: dict[str, TaskID] = {}
    with progress_bar() as progress:
        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        try:
            return do_import(directory, open_sessions(settings), progress=report)
        except CityImportError as exc:
            for problem in exc.problems:
                err.print(f"  {problem}", highlight=False)
            fail(f"{len(exc.problems)} problem(s) in {directory}; nothing was imported", 1)

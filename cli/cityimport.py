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


@import_app.command("gazetteer")
def import_gazetteer(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="Gazetteer file: .csv or .geojson (docs/geocoding.md)."),
) -> None:
    """Import the city's address gazetteer (门牌 and POI with points) from FILE, replacing the stored one."""
    from dashboard.store.gazetteer import GazetteerError
    from dashboard.store.gazetteer import import_gazetteer as do_import

    settings = cli_settings()
    require_backends(settings, redis_too=False)
    upgrade_schema(settings)
    try:
        summary = do_import(file, open_sessions(settings))
    except GazetteerError as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False)
        fail(f"{len(exc.problems)} problem(s) in {file}; nothing was imported", 1)
    console.print(str(summary), highlight=False, soft_wrap=True)
    for where in summary.outside[:20]:
        err.print(f"  {where}: 不在任何单元网格内，已跳过", highlight=False)


@import_app.command("devices")
def import_devices(
    devices: Path = typer.Argument(..., exists=True, dir_okay=False,
                                   help="Cameras and sensors: CSV (device_id,kind,name,lon,lat) or GeoJSON points."),
    types: Path | None = typer.Option(
        None, "--types", exists=True, dir_okay=False,
        help="Alarm types CSV (alarm_type,name,kind,class_code,urgent); default: alarm-types.csv beside DEVICES."),
) -> None:
    """Replace the video/IoT device registry (device → point → grid, alarm type → 小类); all or nothing."""
    from cli.common import load_reference
    from dashboard.store.devices import DevicesError
    from dashboard.store.devices import import_devices as do_import

    settings = cli_settings()
    require_backends(settings, redis_too=False)
    upgrade_schema(settings)
    types = types or devices.parent / "alarm-types.csv"
    if not types.is_file():
        fail(f"no alarm types file {types} (give --types)", 2)
    sessions = open_sessions(settings)
    try:
        n_devices, n_types = do_import(sessions, load_reference(settings, sessions), devices, types)
    except DevicesError as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False)
        fail(f"{len(exc.problems)} problem(s) in {devices.name} / {types.name}; nothing was imported", 1)
    console.print(f"device registry: {n_devices} devices, {n_types} alarm types", highlight=False)

"""`guest-journey import FILE`: start the journeys of many reservations at once (a hotel joining).

FILE is CSV (a header row; columns `reservation_id`, `hotel_id`, `guest.name`, `guest.email`,
`guest.phone`, `guest.language`, `guest.preferred_channels` (separated by spaces, `,`, `;` or
`|`), `guest.marketing_consent`, `arrival`, `departure`, `room_type`, `rate_plan`; an empty cell
is an absent field) or JSON Lines (one PUT body per line, with its `reservation_id`), told
apart by the file's extension or `--format`. Lines are checked and started as
`services.reservation_import` says; the command talks to Temporal and the database directly,
as the worker does (no API needed, no HTTP per line). Progress goes to stderr; the lines that
failed, with why, to the report (CSV: line, reservation_id, error). Exit 0 when every line
was started, updated or unchanged, 1 when some failed, 2 on a file it cannot read.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client

from commands.progress import ProgressDisplay
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.policy import load_policy
from guest_journey.reservations import Guest, Reservation
from guest_journey.schema import prepare_database
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from services.reservation_import import (
    DEFAULT_CONCURRENCY,
    ImportLine,
    ImportTally,
    import_reservations,
)

UNREADABLE = 2
SOME_FAILED = 1
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
CSV_COLUMNS = [
    "reservation_id",
    *(name for name in Reservation.model_fields if name not in ("guest", "reservation_id")),
    *(f"guest.{name}" for name in Guest.model_fields),
]
LIST_SEPARATORS = re.compile(r"[\s,;|]+")


class UnreadableFile(ValueError):
    """A file the command cannot read at all (not one bad line): said in one line, exit 2."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "import", help="start the journeys of a file of reservations (CSV or JSON Lines)",
        description="Start (or update) the journey of every reservation in FILE, many at a time; "
        "a re-run of the same file changes nothing. The lines that failed, and why, go to the report.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="reservations: .csv, or .jsonl (JSON Lines)")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="the file's format (default: by its extension)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"reservations started at a time (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--report", type=Path,
                        help="where the failed lines go (default: FILE with .failed.csv in place of its extension)")
    parser.set_defaults(run_with_args=run)


def run(settings: Settings, *, args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1")
    try:
        lines = list(read_lines(args.file, args.format))
    except (OSError, UnreadableFile) as error:
        return _fail(str(error))
    report = args.report or report_path(args.file)
    tally = asyncio.run(import_lines(settings, lines, concurrency=args.concurrency, show_progress=True))
    write_report(report, tally)
    sys.stdout.write(f"{args.file}: {tally.summary()} in {tally.seconds:.1f} s ({tally.rate:,.0f}/s)\n")
    if tally.failures:
        sys.stdout.write(f"the failed lines and why: {report}\n")
    return SOME_FAILED if tally.failures else 0


def report_path(file: Path) -> Path:
    return file.with_suffix(".failed.csv")


async def import_lines(
    settings: Settings, lines: list[ImportLine], *, concurrency: int, show_progress: bool = False
) -> ImportTally:
    display = ProgressDisplay(sys.stderr, len(lines)) if show_progress else None
    async with _connected(settings) as (client, sessions):
        tally = await import_reservations(
            lines, client=client, settings=settings, sessions=sessions, policy=load_policy(settings.policy_file),
            concurrency=concurrency, total=len(lines),
            progress=(lambda now: display.update(now.done, len(now.failures))) if display else None,
        )
    if display is not None:
        display.finish(tally.done, len(tally.failures))
    return tally


@asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[tuple[Client, SessionFactory]]:
    """A client with the payload codec (its data keys in a pool of their own, as the API's
    and the worker's), and the database."""
    engine = create_engine(settings.resolved_database_url)
    keys_engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)
        yield await connect_temporal(settings, sessions=session_factory(keys_engine)), session_factory(engine)
    finally:
        await keys_engine.dispose()
        await engine.dispose()


# -- the file -----------------------------------------------------------------------


def read_lines(path: Path, format: str | None = None) -> Iterator[ImportLine]:
    kind = format or FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UnreadableFile(f"{path}: say --format csv or --format jsonl (the extension "
                             f"{path.suffix or '(none)'!r} does not tell)")
    with path.open(encoding="utf-8-sig", newline="") as file:
        try:
            yield from (_csv_lines(file, path) if kind == "csv" else _jsonl_lines(file))
        except UnicodeDecodeError as error:
            raise UnreadableFile(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _jsonl_lines(file: Any) -> Iterator[ImportLine]:
    for number, text in enumerate(file, start=1):
        if not text.strip():
            continue
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            yield ImportLine(number, None, f"the line is not JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(fields, dict):
            yield ImportLine(number, None, "the line is not a JSON object (a PUT body with its reservation_id)")
            continue
        yield ImportLine(number, fields)


def _csv_lines(file: Any, path: Path) -> Iterator[ImportLine]:
    reader = csv.DictReader(file)
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if not header or unknown:
        found = f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else "no header row"
        raise UnreadableFile(f"{path}: {found}; the columns are {', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    for row in reader:
        if None in row:
            yield ImportLine(reader.line_num, None, f"the line has more cells than the header's {len(header)}")
            continue
        yield ImportLine(reader.line_num, _nested(row))


def _nested(row: dict[str, str | None]) -> dict[str, Any]:
    """A CSV row as a PUT body: `guest.x` columns in `guest`, empty cells left out."""
    fields: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or not value.strip():
            continue
        value = value.strip()
        if name.startswith("guest."):
            key = name.removeprefix("guest.")
            guest = fields.setdefault("guest", {})
            guest[key] = [part for part in LIST_SEPARATORS.split(value) if part] if key == "preferred_channels" else value
        else:
            fields[name] = value
    return fields


def write_report(path: Path, tally: ImportTally) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["line", "reservation_id", "error"])
        for failure in tally.failures:
            writer.writerow([failure.line, failure.reservation_id or "", failure.error])


def _fail(message: str) -> int:
    sys.stderr.write(f"guest-journey import: {message}\n")
    return UNREADABLE

"""`guest-journey db upgrade|current`: the database schema.

`upgrade` runs the migrations not yet applied (once per release, before new
API and worker replicas start; development processes upgrade by themselves).
`current` prints the revision the database is at, and whether it is the head.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from guest_journey.database import create_engine
from guest_journey.schema import UPGRADE_COMMAND, database_revision, head_revision, upgrade_database
from guest_journey.settings import Settings

logger = logging.getLogger("commands.cli")


def add_parser(commands: Any) -> None:
    """Add `db upgrade` and `db current` to the CLI's subcommands."""
    database = commands.add_parser(
        "db", help="the database schema: upgrade it, show its revision",
        description="The database schema (GUEST_JOURNEY_DATABASE_URL), kept by migrations.",
    )
    actions = database.add_subparsers(dest="db_action", required=True, metavar="{upgrade,current}")
    actions.add_parser("upgrade", help="bring the schema to this release (before new API/worker replicas)",
                       description="Run every migration not yet applied; nothing to do when at the head.")
    actions.add_parser("current", help="print the schema's revision",
                       description="Print the revision the database is at, and whether it is the head.")
    database.set_defaults(run_with_args=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.db_action == "upgrade":
        revision = asyncio.run(_upgrade(settings))
        logger.info("database schema at revision %s (head)", revision)
        return 0
    current, head = asyncio.run(_current(settings)), head_revision()
    state = "(head)" if current == head else f"(this release needs {head}: run `{UPGRADE_COMMAND}`)"
    sys.stdout.write(f"{current or 'none'} {state}\n")
    return 0


async def _upgrade(settings: Settings) -> str:
    engine = create_engine(settings.resolved_database_url)
    try:
        return await upgrade_database(engine)
    finally:
        await engine.dispose()


async def _current(settings: Settings) -> str | None:
    engine = create_engine(settings.resolved_database_url)
    try:
        return await database_revision(engine)
    finally:
        await engine.dispose()

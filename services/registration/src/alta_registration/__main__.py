"""`python -m alta_registration` serves; `python -m alta_registration migrate` applies the
schema's migrations and exits (the Helm pre-install/pre-upgrade Job, so pods never race)."""

import argparse
import asyncio

import structlog

from alta_common.db import apply_migrations
from alta_common.logging import configure_logging
from alta_common.service import serve
from alta_registration.app import SERVICE
from alta_registration.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alta_registration")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("migrate", help="apply the registration schema's migrations and exit")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command != "migrate":
        serve("alta_registration.app:create_app", settings)
        return
    configure_logging(SERVICE, settings.log_level)
    applied = asyncio.run(
        apply_migrations(
            settings.database_url.get_secret_value(),
            schema="registration",
            package="alta_registration.migrations",
        )
    )
    structlog.get_logger("alta.migrate").info("migrations up to date", applied=applied)


if __name__ == "__main__":
    main()

"""`python -m alta_authz` serves; `rotate-keys --dir DIR` and `create-admin EMAIL` operate."""

import argparse
import asyncio
import sys
from pathlib import Path

import psycopg

from alta_authz import repository
from alta_authz.keys import rotate_keys
from alta_authz.settings import Settings
from alta_common.db import apply_migrations
from alta_common.emails import EmailNotValidError, canonical_email
from alta_common.service import serve


async def _create_admin(settings: Settings, email: str) -> int:
    try:
        address = canonical_email(email)
    except EmailNotValidError:
        print(f"not a valid email address: {email}", file=sys.stderr)
        return 2
    conninfo = settings.database_url.get_secret_value()
    await apply_migrations(conninfo, schema="authz", package="alta_authz.migrations")
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        credentials = await repository.credentials_by_email(conn, address)
        if credentials is None:
            print(f"no account for {address}: sign up first, then run this again", file=sys.stderr)
            return 1
        granted = await repository.grant_role(conn, credentials.id, "admin")
    print(f"{address} {'is now an admin' if granted else 'was already an admin'}")
    if credentials.status != "confirmed":
        print("note: the account must confirm its email address before it can log in")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m alta_authz")
    commands = parser.add_subparsers(dest="command")
    rotate = commands.add_parser(
        "rotate-keys", help="current.pem becomes previous.pem; a new current.pem is generated"
    )
    rotate.add_argument("--dir", type=Path, required=True, help="the JWT keys directory")
    admin = commands.add_parser("create-admin", help="make an existing account an admin")
    admin.add_argument("email")
    args = parser.parse_args(argv)
    if args.command == "rotate-keys":
        kid = rotate_keys(args.dir)
        print(f"new current key {kid} in {args.dir}")
        return 0
    if args.command == "create-admin":
        return asyncio.run(_create_admin(Settings(), args.email))
    serve("alta_authz.app:create_app", Settings())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

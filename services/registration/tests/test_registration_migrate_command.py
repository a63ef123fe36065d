"""`python -m alta_registration migrate`, the command the Helm hook Job runs, in its own process."""

import os
import subprocess
import sys
from importlib.resources import files

import psycopg

MIGRATION_FILES = sorted(
    f.name for f in files("alta_registration.migrations").iterdir() if f.name.endswith(".sql")
)


def run_migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test"}
    return subprocess.run(
        [sys.executable, "-m", "alta_registration", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def registration_state(database_url: str) -> tuple[list[str], list[str]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        versions = [
            row[0]
            for row in conn.execute(
                "SELECT version FROM registration.schema_migrations ORDER BY version"
            )
        ]
        relations = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'registration' ORDER BY table_name"
            )
        ]
    return versions, relations


def test_migrate_creates_the_schema_then_a_second_run_changes_nothing(database_url: str) -> None:
    first = run_migrate(database_url)
    assert first.returncode == 0, first.stderr
    versions, relations = registration_state(database_url)
    assert versions == MIGRATION_FILES
    assert {"users", "outbox", "user_credentials"} <= set(relations)

    second = run_migrate(database_url)
    assert second.returncode == 0, second.stderr
    assert registration_state(database_url) == (versions, relations)
    assert '"applied": []' in second.stdout + second.stderr

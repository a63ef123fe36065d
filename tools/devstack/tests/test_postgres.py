from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from alta_devstack.ports import find_free_port
from alta_devstack.postgres import EmbeddedPostgres


def test_server_answers_sql(postgres_admin_url: str) -> None:
    with psycopg.connect(postgres_admin_url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    assert row[0] >= 160000


def test_fresh_databases_are_isolated(database_url_factory: Callable[[], str]) -> None:
    first, second = database_url_factory(), database_url_factory()
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE signup (id int)")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('signup')").fetchone() == (None,)


def test_restart_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with (
        EmbeddedPostgres(data_dir, find_free_port()) as server,
        psycopg.connect(server.url()) as conn,
    ):
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    with (
        EmbeddedPostgres(data_dir, find_free_port()) as server,
        psycopg.connect(server.url()) as conn,
    ):
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url(), connect_timeout=1)

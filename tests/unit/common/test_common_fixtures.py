from __future__ import annotations

import pytest
import sqlalchemy as sa
from egov_common.db import make_engine


@pytest.mark.postgres
def test_postgres_url_is_a_fresh_database_of_this_test(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        assert sa.inspect(conn).get_table_names() == []
        conn.exec_driver_sql("CREATE TABLE mine (id int)")
    engine.dispose()


def test_sqlite_url_points_into_tmp_path(sqlite_url: str, tmp_path: object) -> None:
    assert sqlite_url.startswith("sqlite:///") and str(tmp_path) in sqlite_url

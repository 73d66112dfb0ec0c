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


def test_service_ca_issues_certificates_named_after_the_service(service_ca: object) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from egov_testing.devpki import DevServiceCA

    assert isinstance(service_ca, DevServiceCA)
    cert = x509.load_pem_x509_certificate(service_ca.material("signing").cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "signing"
    assert service_ca.env("keys")["EGOV_KEYS_TLS_CA_DIR"] == str(service_ca.directory)

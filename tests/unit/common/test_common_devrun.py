from __future__ import annotations

from pathlib import Path

from egov_testing.devrun import available_services, plan


def test_only_services_with_a_main_module_are_listed() -> None:
    names = available_services()
    assert names == [
        n for n in ("IDENTITY", "KEYS", "REGISTRY", "SIGNING", "VERIFY_PORTAL") if n in names
    ]
    for name in names:
        assert (Path(__file__).parents[3] / "services" / name.lower()).is_dir()


def test_plan_uses_default_ports_shared_data_dir_and_wires_peers(tmp_path: Path) -> None:
    processes = {p.name: p for p in plan(["KEYS", "SIGNING", "VERIFY_PORTAL"], tmp_path)}
    signing_env = processes["SIGNING"].process_env()
    assert signing_env["EGOV_SIGNING_GRPC_LISTEN"] == "127.0.0.1:50054"
    assert signing_env["EGOV_SIGNING_DATA_DIR"] == str(tmp_path / "signing")
    assert signing_env["EGOV_KEYS_ADDRESS"] == "127.0.0.1:50052"
    portal_env = processes["VERIFY_PORTAL"].process_env()
    assert portal_env["EGOV_VERIFY_PORTAL_HTTP_LISTEN"] == "127.0.0.1:8080"
    assert "EGOV_VERIFY_PORTAL_GRPC_LISTEN" not in portal_env
    assert portal_env["EGOV_SIGNING_ADDRESS"] == "127.0.0.1:50054"


def test_tls_plan_points_every_service_at_one_service_ca(tmp_path: Path) -> None:
    processes = plan(["KEYS", "SIGNING"], tmp_path, tls=True)
    ca_dirs = {p.process_env()[f"EGOV_{p.name}_TLS_CA_DIR"] for p in processes}
    assert ca_dirs == {str(tmp_path / "service-ca")}

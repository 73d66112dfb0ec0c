"""Every overlay renders, validates against the pinned Kubernetes schemas, and meets the
deployment rules of DESIGN.md: probes on gRPC health, non-root read-only containers, resources,
Secrets by reference only, HPA and PDB, dev and prod shapes."""

from __future__ import annotations

import importlib
import re

import kubernetes_validate
import pytest
from k8s_render import (
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    SERVICES,
    STATEFUL,
    Manifest,
    by_name,
    container_env,
    containers,
    of_kind,
    pod_spec,
    render,
)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def workloads(overlay: str) -> list[Manifest]:
    return [o for o in render(overlay) if o["kind"] in WORKLOAD_KINDS]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_against_pinned_kubernetes(overlay: str) -> None:
    objects = render(overlay)
    assert objects, f"{overlay} renders nothing"
    for obj in objects:
        # strict: an unknown or misspelt field fails as the API server would reject it.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_catches_a_misspelt_field() -> None:
    deployment = dict(by_name(render("dev"), "Deployment", "signing"))
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_deployment_service_account_and_settings(overlay: str) -> None:
    objects = render(overlay)
    assert {d["metadata"]["name"] for d in of_kind(objects, "Deployment")} == set(SERVICES)
    for name, (package, _, grpc_port, http_port) in SERVICES.items():
        deployment = by_name(objects, "Deployment", name)
        (container,) = pod_spec(deployment)["containers"]
        assert container["command"] == ["python", "-m", package]
        assert pod_spec(deployment)["serviceAccountName"] == name
        account = by_name(objects, "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False
        assert pod_spec(deployment)["automountServiceAccountToken"] is False
        service_ports = {
            p["name"]: p["port"] for p in by_name(objects, "Service", name)["spec"]["ports"]
        }
        expected = {k: v for k, v in (("grpc", grpc_port), ("http", http_port)) if v is not None}
        assert service_ports == expected, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_grpc_health_where_the_service_listens(overlay: str) -> None:
    objects = render(overlay)
    for name, (_, prefix, grpc_port, http_port) in SERVICES.items():
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        env, _ = container_env(objects, container)
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            spec = container[probe]
            if grpc_port is None:
                assert spec["httpGet"]["path"] == "/healthz", (name, probe)
                assert env[f"EGOV_{prefix}_HTTP_LISTEN"].endswith(f":{http_port}")
                continue
            assert env[f"EGOV_{prefix}_GRPC_LISTEN"].endswith(f":{grpc_port}")
            if env.get(f"EGOV_{prefix}_TLS_MODE") == "mtls":
                # The kubelet's gRPC probe cannot speak TLS: the same Check, over mTLS, by exec.
                script = spec["exec"]["command"][-1]
                assert f"'127.0.0.1:{grpc_port}'" in script, (name, probe)
                assert "HealthStub" in script and "/var/run/secrets/egov/tls/" in script
            else:
                assert spec["grpc"]["port"] == grpc_port, (name, probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_are_non_root_read_only_without_capabilities(overlay: str) -> None:
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in ctx["capabilities"], name
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {"/tmp"} <= mounts or "/var/run/postgresql" in mounts, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_written_into_settings(overlay: str) -> None:
    objects = render(overlay)
    for config in of_kind(objects, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert not key.upper().endswith(
                ("_PASSWORD", "_PASSPHRASE", "_PIN", "_KEK", "_SECRET", "_TOKEN")
            ), key
            assert "BEGIN" not in str(value), (
                f"PEM material in ConfigMap {config['metadata']['name']}"
            )
            if key.endswith("_DATABASE_URL"):
                raise AssertionError(f"{key} belongs in a Secret, not ConfigMap")
    for workload in workloads(overlay):
        for container in containers(workload):
            for item in container.get("env", []):
                variable = item["name"]
                sensitive = any(
                    w in variable for w in ("DATABASE_URL", "KEK", "PIN", "PASSWORD", "PASSPHRASE")
                )
                if sensitive and not variable.endswith("_FILE"):
                    assert "secretKeyRef" in item.get("valueFrom", {}), variable
    for name in STATEFUL:
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        _, secrets = container_env(objects, container)
        prefix = SERVICES[name][1]
        assert any(ref.variable == f"EGOV_{prefix}_DATABASE_URL" for ref in secrets), name


def test_prod_ships_no_secret_objects_and_autoscales_from_two_replicas() -> None:
    objects = render("prod")
    assert of_kind(objects, "Secret") == []
    for name in SERVICES:
        # The autoscaler owns the count: a fixed one would reset it on every apply.
        assert "replicas" not in by_name(objects, "Deployment", name)["spec"], name
        hpa = by_name(objects, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["minReplicas"] >= 2, name
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        pdb = by_name(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name
    assert of_kind(objects, "StatefulSet") == [], "prod uses an external PostgreSQL"


def test_prod_keys_use_pkcs11_and_bootstrap_only_on_purpose() -> None:
    objects = render("prod")
    bootstrap = by_name(objects, "Job", "keys-bootstrap")
    assert bootstrap["spec"]["suspend"] is True
    (container,) = pod_spec(bootstrap)["containers"]
    assert container["command"] == ["python", "-m", "egov_keys", "bootstrap"]
    (keys,) = pod_spec(by_name(objects, "Deployment", "keys"))["containers"]
    env, _ = container_env(objects, keys)
    assert env["EGOV_KEYS_KEY_BACKEND"] == "pkcs11"
    assert "EGOV_KEYS_SOFTWARE_KEK_FILE" not in env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_talk_mutual_tls_with_certificates_from_secrets(overlay: str) -> None:
    objects = render(overlay)
    for name, (_, prefix, _, _) in SERVICES.items():
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        env, _ = container_env(objects, container)
        assert env[f"EGOV_{prefix}_TLS_MODE"] == "mtls", name
        volumes = {v["name"]: v for v in pod_spec(by_name(objects, "Deployment", name))["volumes"]}
        assert volumes["mtls"]["secret"]["secretName"] == f"{name}-mtls"


def test_dev_runs_one_replica_each_with_in_cluster_postgres() -> None:
    objects = render("dev")
    for name in SERVICES:
        assert by_name(objects, "Deployment", name)["spec"]["replicas"] == 1, name
    assert of_kind(objects, "HorizontalPodAutoscaler") == []
    assert of_kind(objects, "PodDisruptionBudget") == []
    postgres = by_name(objects, "StatefulSet", "postgres")
    assert postgres["spec"]["volumeClaimTemplates"], "dev PostgreSQL keeps its data on a volume"
    for name in STATEFUL:
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        _, refs = container_env(objects, container)
        (ref,) = [r for r in refs if r.variable.endswith("_DATABASE_URL")]
        secret = by_name(objects, "Secret", ref.secret)
        assert secret["metadata"]["name"].startswith(f"{name}-database")
        assert ref.key in secret["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_stateful_service_has_a_migration_job(overlay: str) -> None:
    objects = render(overlay)
    for name in STATEFUL:
        job = by_name(objects, "Job", f"{name}-migrate")
        (container,) = pod_spec(job)["containers"]
        assert container["command"] == ["python", "-m", SERVICES[name][0], "migrate"]
        (deployment,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        assert container["image"] == deployment["image"], (
            "the Job migrates to the schema it deploys"
        )
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_exports_telemetry_through_standard_otel_variables(overlay: str) -> None:
    objects = render(overlay)
    for workload in workloads(overlay):
        if workload["metadata"]["name"] == "postgres":
            continue
        for container in containers(workload):
            env, _ = container_env(objects, container)
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http"), workload["metadata"][
                "name"
            ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_migration_jobs_need_is_applied_before_them(overlay: str) -> None:
    """k8s/apply.sh applies the objects labelled with these components first, then the Jobs."""
    script = (K8S / "apply.sh").read_text()
    first = re.search(r"component in \(([a-z,-]+)\)'", script)
    assert first is not None, "apply.sh's first step selects components"
    early = set(first[1].split(","))
    objects = render(overlay)
    for job in of_kind(objects, "Job"):
        spec = pod_spec(job)
        needed = [("ServiceAccount", spec["serviceAccountName"])]
        for container in spec["containers"]:
            needed += [("ConfigMap", s["configMapRef"]["name"]) for s in container["envFrom"]]
            needed += [
                ("Secret", ref.secret)
                for ref in container_env(objects, container)[1]
                if any(o["metadata"]["name"] == ref.secret for o in of_kind(objects, "Secret"))
            ]
        for kind, name in needed:
            labels = by_name(objects, kind, name)["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/component") in early, (
                job["metadata"]["name"],
                kind,
                name,
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_token_issuer_that_peers_expect_is_identitys(overlay: str) -> None:
    objects = render(overlay)

    def settings(name: str) -> dict[str, str]:
        (container,) = pod_spec(by_name(objects, "Deployment", name))["containers"]
        return container_env(objects, container)[0]

    issuer = settings("identity")["EGOV_IDENTITY_ISSUER"]
    assert settings("keys")["EGOV_KEYS_IDENTITY_ISSUER"] == issuer
    assert settings("registry")["EGOV_REGISTRY_TOKEN_ISSUER"] == issuer


def _settings_names(package: str, prefix: str) -> set[str]:
    """The variables a service reads: ``EGOV_<PREFIX>_<FIELD>`` and its peers' aliases."""
    from egov_common.settings import ServiceSettings

    module = importlib.import_module(f"{package}.settings")
    found: list[type[ServiceSettings]] = []
    for value in vars(module).values():
        is_settings = isinstance(value, type) and issubclass(value, ServiceSettings)
        if is_settings and value is not ServiceSettings:
            found.append(value)
    (cls,) = found
    names = set()
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"EGOV_{prefix}_{field.upper()}")
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_in_the_manifests_is_one_the_service_reads(overlay: str) -> None:
    """Settings ignore unknown variables, so a misspelt one would be silently dropped."""
    objects = render(overlay)
    for workload in [*of_kind(objects, "Deployment"), *of_kind(objects, "Job")]:
        name = workload["metadata"]["name"].removesuffix("-migrate").removesuffix("-bootstrap")
        package, prefix, _, _ = SERVICES[name]
        known = _settings_names(package, prefix)
        for container in containers(workload):
            env, secrets = container_env(objects, container)
            variables = {*env, *(ref.variable for ref in secrets)}
            unknown = {v for v in variables if v.startswith("EGOV_")} - known
            assert not unknown, (
                f"{workload['metadata']['name']} sets what it never reads: {unknown}"
            )

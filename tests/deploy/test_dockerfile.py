"""The Dockerfile, read as a build would read it (no Docker engine needed): one target per
service on a pinned slim Python, started as ``python -m egov_<name>``, non-root, nothing but
/tmp writable, no build tools in what ships, OCI labels, SoftHSM2 only in the keys PKCS#11 image."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

import pytest
from k8s_render import REPO, SERVICES, by_name, pod_spec, render

#: Dockerfile target -> Python package it starts.
TARGETS = {
    "identity": "egov_identity",
    "keys": "egov_keys",
    "keys-softhsm": "egov_keys",
    "registry": "egov_registry",
    "signing": "egov_signing",
    "verify_portal": "egov_verify_portal",
}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|[\w.+-]+-dev|git|curl|wget)\b")
NON_ROOT_UID = 10001


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    return lines


def parse() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages by name, in order."""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in _logical_lines((REPO / "Dockerfile").read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"every stage is named: {line}"
            stage = Stage(words[2], words[0])
            stages[stage.name] = stage
        elif stage is None:
            assert keyword == "ARG", f"only ARG before the first FROM: {line}"
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            stage.instructions.append((keyword, rest))
    return args, stages


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, base first."""
    result = [stages[name]]
    while result[0].base in stages:
        result.insert(0, stages[result[0].base])
    return result


def effective(stages: dict[str, Stage], name: str, keyword: str) -> list[str]:
    return [rest for s in chain(stages, name) for k, rest in s.instructions if k == keyword]


def labels(stages: dict[str, Stage], name: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for rest in effective(stages, name, "LABEL"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            found[key] = value
    return found


def test_every_service_has_a_target_that_starts_its_package() -> None:
    _, stages = parse()
    for target, package in TARGETS.items():
        assert target in stages, f"no target {target}"
        entrypoint = effective(stages, target, "ENTRYPOINT")[-1]
        assert json.loads(entrypoint) == ["python", "-m", package], target
        folder = package.removeprefix("egov_")
        assert (REPO / "services" / folder / package).is_dir(), package


def test_base_image_is_an_exact_slim_python_311_tag() -> None:
    args, stages = parse()
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    for stage in stages.values():
        assert stage.base in stages or stage.base == "${PYTHON_IMAGE}", stage.name


def test_targets_run_as_a_non_root_user_with_only_tmp_writable() -> None:
    _, stages = parse()
    for target in TARGETS:
        users = effective(stages, target, "USER")
        assert users, target
        assert users[-1].split(":")[0] == str(NON_ROOT_UID), f"{target} runs as {users[-1]}"
        volumes = " ".join(effective(stages, target, "VOLUME"))
        assert '"/tmp"' in volumes, target
        env = " ".join(effective(stages, target, "ENV"))
        assert "PYTHONDONTWRITEBYTECODE=1" in env, "a read-only root cannot take .pyc files"


def test_no_build_tools_in_what_ships() -> None:
    _, stages = parse()
    shipped = {s.name for t in TARGETS for s in chain(stages, t)}
    assert "build" not in shipped, "targets must not be built FROM the build stage"
    for name in shipped:
        for keyword, rest in stages[name].instructions:
            if keyword == "RUN" and ("apt-get install" in rest or "pip install" in rest):
                assert "pip install" not in rest, (
                    f"{name} installs Python packages: build stage only"
                )
                assert not BUILD_TOOLS.search(rest.split("install", 1)[1]), f"{name}: {rest}"
            if keyword == "COPY" and rest.startswith("--from="):
                assert rest.split()[0] == "--from=build" and rest.split()[1:] == ["/opt/egov"] * 2


def test_softhsm_is_only_in_the_keys_pkcs11_image() -> None:
    _, stages = parse()
    for target in TARGETS:
        runs = " ".join(effective(stages, target, "RUN"))
        assert ("softhsm2" in runs) == (target == "keys-softhsm"), target


def test_dependencies_come_from_the_pinned_pyproject() -> None:
    _, stages = parse()
    build = " ".join(rest for _, rest in stages["build"].instructions)
    assert "pyproject.toml" in build and "--no-deps ." in build


def test_images_carry_oci_labels() -> None:
    _, stages = parse()
    for target in TARGETS:
        found = labels(stages, target)
        for key in ("title", "source", "version", "revision", "created", "licenses"):
            assert found.get(f"org.opencontainers.image.{key}"), (target, key)
    titles = {labels(stages, t)["org.opencontainers.image.title"] for t in TARGETS}
    assert len(titles) == len(TARGETS), "each image says which service it is"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_manifests_match_the_images(overlay: str) -> None:
    _, stages = parse()
    objects = render(overlay)
    for name, (_, _, grpc_port, http_port) in SERVICES.items():
        deployment = by_name(objects, "Deployment", name)
        target = name.replace("-", "_")
        exposed = {int(p) for rest in effective(stages, target, "EXPOSE") for p in rest.split()}
        assert exposed == {p for p in (grpc_port, http_port) if p}, name
        assert pod_spec(deployment)["securityContext"]["runAsUser"] == NON_ROOT_UID
        (container,) = pod_spec(deployment)["containers"]
        assert container["image"].rsplit("/", 1)[-1].startswith(f"{name}:"), container["image"]


def test_build_context_leaves_out_venv_git_data_and_test_fixtures() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert next(x for x in lines if not x.startswith("#")) == "*", "deny by default"
    allowed = {x for x in lines if x.startswith("!")}
    assert allowed == {"!pyproject.toml", "!README.md", "!libs/", "!services/"}
    assert "libs/egov_testing" in lines, "test fixtures do not ship"

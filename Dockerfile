# syntax=docker/dockerfile:1
# One image per service, one target each:
#   docker build --target identity      -t egov-trust/identity:0.1.0 .
#   docker build --target keys          -t egov-trust/keys:0.1.0 .          (software key custody)
#   docker build --target keys-softhsm  -t egov-trust/keys-softhsm:0.1.0 .  (PKCS#11 through SoftHSM2)
#   docker build --target registry      -t egov-trust/registry:0.1.0 .
#   docker build --target signing       -t egov-trust/signing:0.1.0 .
#   docker build --target verify_portal -t egov-trust/verify-portal:0.1.0 .
# Every final stage runs as uid 10001, needs nothing written outside /tmp (run it with a read-only
# root filesystem and a tmpfs or emptyDir on /tmp) and carries no compiler or package cache.

# Exact tag: a rebuild picks up the same Python and the same Debian release.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: compile what has no wheel, install the pinned distribution into /opt/egov ----------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/egov
WORKDIR /src
# Dependencies first, from the pinned list in pyproject.toml, so that a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt
RUN /opt/egov/bin/pip install --require-virtualenv -r /tmp/requirements.txt
COPY libs ./libs
COPY services ./services
# Non-editable install of the project itself; its dependencies are already there at the pins.
RUN /opt/egov/bin/pip install --require-virtualenv --no-deps . \
 && /opt/egov/bin/python -m compileall -q /opt/egov/lib

# --- runtime: what every service image shares ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.vendor="egov-trust" \
      org.opencontainers.image.source="https://example.invalid/egov-trust" \
      org.opencontainers.image.documentation="k8s/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
RUN groupadd --system --gid 10001 egov \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin egov
COPY --from=build /opt/egov /opt/egov
ENV PATH=/opt/egov/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
# The only writable place: mount an emptyDir (Kubernetes) or tmpfs (docker run --read-only --tmpfs /tmp).
VOLUME ["/tmp"]
WORKDIR /tmp

# Thai fonts (TLWG Garuda, Loma ...) for the visible signature stamp and the report PDF.
FROM runtime AS runtime-thai-fonts
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-thai-tlwg \
 && rm -rf /var/lib/apt/lists/*

# --- one target per service --------------------------------------------------------------------
FROM runtime AS identity
LABEL org.opencontainers.image.title="egov-trust identity" \
      org.opencontainers.image.description="Digital ID: proofing, login, OIDC ID tokens"
ENV EGOV_IDENTITY_GRPC_LISTEN=0.0.0.0:50051 \
    EGOV_IDENTITY_HTTP_LISTEN=0.0.0.0:8081 \
    EGOV_IDENTITY_DATA_DIR=/tmp/data
EXPOSE 50051 8081
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_identity"]

FROM runtime AS keys
LABEL org.opencontainers.image.title="egov-trust keys" \
      org.opencontainers.image.description="CA, signing credentials under sole control, CRL, OCSP, TSA"
ENV EGOV_KEYS_GRPC_LISTEN=0.0.0.0:50052 \
    EGOV_KEYS_HTTP_LISTEN=0.0.0.0:8082 \
    EGOV_KEYS_DATA_DIR=/tmp/data
EXPOSE 50052 8082
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_keys"]

# keys with the PKCS#11 backend and SoftHSM2 as the token (tests, staging). With a real HSM, build
# FROM keys and add the vendor's PKCS#11 client library instead, or mount it (see k8s/README.md).
FROM keys AS keys-softhsm
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/egov/softhsm/tokens \
 && printf 'directories.tokendir = /var/lib/egov/softhsm/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        > /etc/softhsm/softhsm2.conf \
 && chown -R 10001:10001 /var/lib/egov/softhsm
LABEL org.opencontainers.image.title="egov-trust keys (PKCS#11, SoftHSM2)"
ENV SOFTHSM2_CONF=/etc/softhsm/softhsm2.conf \
    EGOV_KEYS_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
# Token files must outlive the container: mount a persistent volume here.
VOLUME ["/var/lib/egov/softhsm/tokens"]
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_keys"]

FROM runtime AS registry
LABEL org.opencontainers.image.title="egov-trust registry" \
      org.opencontainers.image.description="Register of issued documents with a transparency log"
ENV EGOV_REGISTRY_GRPC_LISTEN=0.0.0.0:50053 \
    EGOV_REGISTRY_DATA_DIR=/tmp/data
EXPOSE 50053
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_registry"]

FROM runtime-thai-fonts AS signing
LABEL org.opencontainers.image.title="egov-trust signing" \
      org.opencontainers.image.description="PAdES signing with remote keys, validation reports"
ENV EGOV_SIGNING_GRPC_LISTEN=0.0.0.0:50054 \
    EGOV_SIGNING_DATA_DIR=/tmp/data
EXPOSE 50054
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_signing"]

FROM runtime-thai-fonts AS verify_portal
LABEL org.opencontainers.image.title="egov-trust verify portal" \
      org.opencontainers.image.description="Web page for relying parties: upload a PDF, read the report"
ENV EGOV_VERIFY_PORTAL_HTTP_LISTEN=0.0.0.0:8080 \
    EGOV_VERIFY_PORTAL_DATA_DIR=/tmp/data
EXPOSE 8080
USER 10001:10001
ENTRYPOINT ["python", "-m", "egov_verify_portal"]

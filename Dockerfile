# syntax=docker/dockerfile:1
# One image for every safety-chain service; docker-compose.yml and deploy/k8s choose the command:
#   python -m services.signals | python -m services.consent | python -m services.audit
# Two targets: `production` (the default, what deploy/k8s runs) has no devstack/ (ADR 0001: the
# development tooling is never used in production); `development` (compose's) adds it for
#   python -m devstack.keys          (compose's keys-init: the development key ceremony)
#   python -m devstack.provision     (compose's kafka-init: users, ACLs and topics, then exit)
#
# Reproducible: the base image is pinned by digest and every dependency comes from
# requirements.lock (`make lock`), each file checked against its hash, wheels only (nothing is
# compiled). Two stages: `build` fills the virtualenv /opt/venv; the runtime stage copies it and
# has no installer, compiler or development tool (the dev extra is only in requirements-dev.lock,
# which never enters the build context).

# python:3.11-slim: the multi-platform index of Python 3.11.16 on Debian trixie, as pushed on
# 2026-08-16. NOT VERIFIED HERE: Docker Hub cannot be reached from where this was written, so the
# digest is the one public build records give for that tag. Check it, and move it to a newer
# python:3.11-slim, with
#   docker buildx imagetools inspect python:3.11-slim
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A virtualenv without pip of its own: the base image's pip fills it (--python), so what the
# runtime stage copies holds the dependencies and the project, and no installer.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src

# The dependencies first (their layer outlives changes to the code): the dependencies and the
# postgres extra (psycopg, so that SC_SIGNALS_DATABASE_URL and SC_AUDIT_DATABASE_URL can name
# postgresql+psycopg://...), exactly as locked.
COPY requirements.lock ./
RUN pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements.lock

# Then the project itself, its dependencies already there (for the `safety-chain` command).
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
COPY cli/ cli/
COPY partner/ partner/
COPY publisher/ publisher/
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps .


FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    SC_CONFIG_DIR=/app/config \
    SC_KEYS_DIR=/keys

# No installer in the runtime image either: the base image's own pip, setuptools and wheel go.
# A fixed uid/gid, so Kubernetes (runAsUser/fsGroup 10001) and volumes agree on ownership.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app

# The sources the services run from (`python -m services.<name>` in /app), the same the build
# stage installed.
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
COPY cli/ cli/
COPY partner/ partner/
COPY publisher/ publisher/

# The registry and agreements of the local example set-up; production mounts its own over it.
COPY config/ config/
# The compliance map the audit console links to (/console/compliance).
COPY docs/compliance.md docs/compliance.md

# /keys: a service's own keys (compose mounts its own named volume there, filled by keys-init;
# production mounts Kubernetes Secrets read-only). /keys/kafka: where compose's keys-init and
# kafka-init mount the volume of every principal's development Kafka password.
# /export/<service>: where compose's keys-init writes each service's set. /data: the SQLite
# files of the signals service (key store and ledger) and of the audit service, each on its own
# volume.
# Created here so that named volumes start out owned by the non-root user.
RUN mkdir -p /keys/kafka /data /export/signals /export/consent /export/audit \
    && chown -R app:app /keys /data /export \
    && chmod 0700 /keys /keys/kafka /data /export /export/signals /export/consent /export/audit

USER 10001:10001

EXPOSE 8001 8002 8003

# Liveness of whichever service runs: its /healthz on SC_HTTP_PORT (compose and deploy/k8s set
# it); unset, the one of the three default ports that is listening. The slim image has no curl;
# urlopen raises on anything but 2xx. (compose's own healthchecks ask /readyz instead, and
# Kubernetes uses its probes.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=4 \
    CMD ["python", "-c", "import os, socket, urllib.request; ports = [p for p in os.environ.get('SC_HTTP_PORT', '8001 8002 8003').split() if socket.socket().connect_ex(('127.0.0.1', int(p))) == 0]; urllib.request.urlopen(f'http://127.0.0.1:{ports[0]}/healthz', timeout=3)"]

CMD ["safety-chain", "--help"]


# compose's image: the production one plus the development tooling (run from /app as
# `python -m devstack.<tool>`), for the key ceremony and the provisioning of a local broker.
FROM runtime AS development

COPY devstack/ devstack/


# The default target (`docker build .` without --target): the production image, no devstack/.
FROM runtime AS production

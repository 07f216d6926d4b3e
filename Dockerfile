# syntax=docker/dockerfile:1
# One image for every safety-chain service; docker-compose.yml and deploy/k8s choose the command:
#   python -m services.signals | python -m services.consent | python -m services.audit
#   python -m devstack.provision     (compose's kafka-init: users, ACLs and topics, then exit)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SC_CONFIG_DIR=/app/config \
    SC_KEYS_DIR=/keys

# A fixed uid/gid, so Kubernetes (runAsUser/fsGroup 10001) and volumes agree on ownership.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
COPY cli/ cli/
COPY partner/ partner/
COPY publisher/ publisher/
COPY devstack/ devstack/
# The postgres extra (psycopg) lets SC_SIGNALS_DATABASE_URL and SC_AUDIT_DATABASE_URL name
# postgresql+psycopg://... without another image.
RUN pip install --no-cache-dir ".[postgres]" \
    && rm -rf build ./*.egg-info

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

CMD ["safety-chain", "--help"]

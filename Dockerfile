# One image for Piyasa: `piyasa migrate && piyasa up` (see docker-compose.yml).
# A regular install: the `migrations` package ships inside the wheel.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIYASA_DATA_DIR=/data \
    PIYASA_HTTP_HOST=0.0.0.0 \
    PIYASA_HTTP_PORT=8080

# PostgreSQL client tools for backups (`pg_dump -Fc` / `pg_restore`, docs/backups.md), from
# the PostgreSQL project's apt repository: Debian's own client is older than the server in
# docker-compose.yml, and pg_dump refuses a server newer than itself (PostgreSQL docs,
# pg_dump "Notes"). Keep PG_MAJOR >= the server's major version; `piyasa check` reports
# missing tools.
ARG PG_MAJOR=16
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-${PG_MAJOR} \
    && apt-get purge -y curl && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY piyasa ./piyasa
COPY chatops ./chatops
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --create-home piyasa \
    && chown piyasa:piyasa /data

USER piyasa
VOLUME ["/data"]
# Listens on all interfaces inside the container; publish it on the host's loopback
# (-p 127.0.0.1:8080:8080) behind a reverse proxy with TLS, and set PIYASA_METRICS_TOKEN so
# /metrics needs it: see deploy/README.md.
EXPOSE 8080

# Liveness and readiness: the process answers, and the database is reachable.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request as u; [u.urlopen('http://127.0.0.1:8080' + p, timeout=4) for p in ('/healthz', '/readyz')]" || exit 1

CMD ["sh", "-c", "piyasa migrate && exec piyasa up"]

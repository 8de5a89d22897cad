# syntax=docker/dockerfile:1
# Gatehouse: one image for the roles all, auth and mcp (GATEHOUSE_ROLE).
#
#   docker build -t gatehouse .
#   docker run --env-file .env -p 8000:8000 gatehouse
#
# The builder stage has the compilers (for any dependency without a wheel for this platform);
# the final stage gets only the virtual environment and the application, and runs unprivileged.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Compilers only live here, and their exact Debian versions do not reach the final image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, read from pyproject.toml, so code changes do not reinstall them (nor do
# README edits: it is copied after).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY README.md ./
COPY app ./app
# Editable: the package resolves to /app/app, next to alembic/ and alembic.ini, which
# `gatehouse db upgrade` finds relative to the code.
RUN pip install --no-cache-dir --no-deps -e . \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    VAR_DIR=/var/lib/gatehouse \
    FORWARDED_ALLOW_IPS=127.0.0.1
RUN groupadd --system --gid 10001 gatehouse \
    && useradd --system --uid 10001 --gid gatehouse --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse \
    && mkdir -p /var/lib/gatehouse \
    && chown gatehouse:gatehouse /var/lib/gatehouse
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app/pyproject.toml /app/README.md ./
COPY app ./app
COPY alembic ./alembic
COPY alembic.ini ./
# Numeric, so orchestrators can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/gatehouse"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
# The same entry point as `python -m app serve` (app/__main__.py and the `gatehouse` script both
# call app.cli:main). HOST=0.0.0.0 above binds every interface; proxy headers are trusted from
# FORWARDED_ALLOW_IPS.
CMD ["gatehouse", "serve"]

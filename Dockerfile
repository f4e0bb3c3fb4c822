# syntax=docker/dockerfile:1
#
# One image for the whole distribution. It runs any one service, or the console:
#   prodigy-users serve identity|membership|notifications|reporting|console
#     (a service: HTTP, the consumers and the outbox relay, in one process;
#     the console: the web pages, with its templates and static files)
#   prodigy-users migrate identity|membership|notifications|reporting
#     (Alembic, up to head; deploy/ runs it as an init container)
# Configuration is PRODIGY_* environment variables only (deploy/README.md).
# It runs as a non-root user on a read-only root filesystem: the services write
# nothing but temporary files, to /tmp (mount an emptyDir there).
#
# tests/deploy/test_image.py keeps this file honest: every path it copies exists
# and is in the build context, every command it names is in the CLI.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a virtualenv with the distribution and its dependencies ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/prodigy
WORKDIR /src
# The package sources only (see .dockerignore); no tests, no dev data.
COPY pyproject.toml README.md ./
COPY contracts/ contracts/
COPY services/ services/
# A regular (not editable) install: the same imports as the editable one. pip
# compiles the bytecode here, once: at run time the root filesystem is read-only.
RUN /opt/prodigy/bin/pip install . \
    && /opt/prodigy/bin/prodigy-users --help > /dev/null

# ---- run: the virtualenv on a clean base; no compilers, no pip cache -------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="prodigy-users" \
      org.opencontainers.image.description="User management for training departments: identity, membership, notifications and reporting services." \
      org.opencontainers.image.source="https://example.org/prodigy-users"
# DejaVu: certificate PDFs print every person's name (the built-in PDF fonts stop at
# Latin-1, and reporting falls back to them without it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 prodigy \
    && useradd --system --uid 10001 --gid prodigy --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin prodigy
COPY --from=build /opt/prodigy /opt/prodigy
ENV PATH=/opt/prodigy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PRODIGY_HTTP_HOST=0.0.0.0
WORKDIR /tmp
USER 10001:10001
EXPOSE 8100 8101 8102 8103 8104
ENTRYPOINT ["prodigy-users"]
CMD ["--help"]

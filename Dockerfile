# miva-connect: the locked dependencies and the package go into /app/.venv in one stage;
# the next runs that venv as a non-root user. Build: docker build -t miva-connect .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# The uv of the Makefile and of [tool.uv] required-version; it never downloads a Python.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# The dependencies first (this layer survives source changes), then the package.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project --python python3
COPY README.md ./
COPY src ./src
RUN uv sync --locked --no-dev --no-editable --python python3

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 miva
WORKDIR /app
# Same base image, same path: the venv's interpreter and scripts work as built.
COPY --from=build /app/.venv /app/.venv
# Migrations run from here: alembic.ini finds alembic/ beside it.
COPY alembic.ini ./
COPY alembic ./alembic
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/app/.venv/bin:$PATH \
    MIVA_CONNECT_ENVIRONMENT=production \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=3)"]
# Runs `miva-connect db upgrade`, then execs `miva-connect serve` (HOST, PORT, WORKERS).
ENTRYPOINT ["docker-entrypoint.sh"]

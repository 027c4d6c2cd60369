# miva-connect: build the wheel in one stage, run it as a non-root user in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 miva
WORKDIR /app
COPY --from=build /install /usr/local
# Migrations run from here: alembic.ini finds alembic/ beside it.
COPY alembic.ini ./
COPY alembic ./alembic
USER miva
ENV MIVA_CONNECT_ENVIRONMENT=production \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"
CMD ["sh", "-c", "miva-connect db upgrade && exec miva-connect serve --host 0.0.0.0 --port 8000"]

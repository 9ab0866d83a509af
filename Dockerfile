# syntax=docker/dockerfile:1.7
# Build stage: resolve and install the locked dependencies with uv into /app/.venv.
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY service ./service
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --locked --no-dev

# Runtime stage: the virtual environment and the code, run as an unprivileged user.
FROM python:3.11-slim
# A numeric uid/gid, so that orchestrators can verify "runAsNonRoot" without reading /etc/passwd.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --home-dir /app --shell /usr/sbin/nologin herald
WORKDIR /app
COPY --from=build --chown=10001:10001 /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    HERALD_DATA_DIR=/app/.herald \
    HERALD_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status == 200 else 1)"]
# Bound to all interfaces, Herald requires HERALD_API_KEYS (it refuses to start without them).
CMD ["herald", "serve", "--host", "0.0.0.0", "--port", "8000"]

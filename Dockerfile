# The worker alone: in Kubernetes the Dapr sidecar is injected beside it (dapr.io/enabled).
# Not built on our development machines, which have no Docker engine; see the README.

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /srv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# Dependencies first, in a layer of their own that survives code changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
RUN uv sync --frozen --no-dev

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid worker --no-create-home --shell /usr/sbin/nologin worker
WORKDIR /srv
COPY --from=build --chown=worker:worker /srv/.venv ./.venv
COPY --from=build --chown=worker:worker /srv/app ./app
COPY --chown=worker:worker appsettings.json ./
ENV PATH=/srv/.venv/bin:$PATH PYTHONUNBUFFERED=1 Serilog__Format=json
USER 10001:10001
EXPOSE 8000
# 0.0.0.0 inside the pod: the sidecar and the kubelet's probes reach the app over the pod network.
CMD ["uvicorn", "app.main:create_app", "--factory", "--loop", "uvloop", "--http", "httptools", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]

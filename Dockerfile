# The worker alone: in Kubernetes the Dapr sidecar is injected beside it (dapr.io/enabled).
# `make image` builds this file with buildah; elsewhere `docker build .` does. The base image is
# a build argument: Docker Hub's python:3.11-slim by default, or (where it cannot be pulled) a
# Debian 12 root filesystem with its own Python 3.11 (stack/base-image.sh).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# A CA bundle to trust for the package index (a TLS-inspecting proxy's), if the build has one.
ARG SSL_CERT_FILE=
ENV SSL_CERT_FILE=${SSL_CERT_FILE} PIP_CERT=${SSL_CERT_FILE} \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install uv==0.13.9
WORKDIR /srv
# Dependencies first, in a layer of their own that survives code changes.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-default-groups --no-install-project --python python3
COPY app ./app
RUN /opt/uv/bin/uv sync --frozen --no-default-groups --no-editable --python python3

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="aevatar-worker" \
      org.opencontainers.image.description="Background processing for the Aevatar platform, beside a Dapr sidecar" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN (getent group worker || groupadd --system --gid 10001 worker) \
    && (getent passwd worker || useradd --system --uid 10001 --gid 10001 --no-create-home \
        --shell /usr/sbin/nologin worker)
WORKDIR /srv
COPY --from=build --chown=10001:10001 /srv/.venv ./.venv
COPY --chown=10001:10001 appsettings.json ./
# No bytecode in the image (26 MB of it would put the image over 200 MB): each container
# compiles what it imports once, into /tmp (a tmpfs or emptyDir beside a read-only root).
# Production: the app does not start without APP_API_TOKEN and Api__OperatorToken (or a setting
# that opens an audience by name, e.g. Api__AllowAnonymousOperators=true).
ENV PATH=/srv/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/tmp/pycache \
    Serilog__Format=json App__Environment=Production
USER 10001:10001
EXPOSE 8000
# The app's own liveness probe, with what the image has (no curl in a slim image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('APP_PORT', '8000')}/healthz\", timeout=2)"]
# 0.0.0.0 inside the pod: the sidecar and the kubelet's probes reach the app over the pod
# network. APP_PORT moves it (a host-network container beside other apps).
CMD ["sh", "-c", "exec uvicorn app.main:create_app --factory --loop uvloop --http httptools --host \"${APP_HOST:-0.0.0.0}\" --port \"${APP_PORT:-8000}\" --no-access-log"]

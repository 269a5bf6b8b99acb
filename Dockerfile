# aistatus container image: `aistatus run` with config only from the environment.
# Build:  docker build -t aistatus .      (or: podman build -t aistatus .)
# Run:    docker compose up -d            (compose.yaml: the bot plus Redis)
# BASE is any Debian-like image with python3 (3.11+) and its venv module; both stages use it, so the
# virtualenv built in the first stage runs unchanged in the second.
ARG BASE=python:3.12-slim

# -- build: a virtualenv with the project and its dependencies -------------------------------------
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print(*p["project"]["dependencies"], sep="\n", file=open("requirements.txt", "w")); \
print(*p["build-system"]["requires"], sep="\n", file=open("build.txt", "w"))' \
 && python3 -m venv /opt/aistatus \
 && /opt/aistatus/bin/pip install -q -r requirements.txt \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install -q -r build.txt
COPY README.md LICENSE ./
COPY bot ./bot
RUN /opt/build/bin/pip wheel -q --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/aistatus/bin/pip install -q --no-deps /wheels/*.whl \
 && /opt/aistatus/bin/pip uninstall -q -y pip setuptools  # not needed at run time: 20+ MB

# -- run: the virtualenv on a clean base, as an unprivileged user ------------------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="aistatus" \
      org.opencontainers.image.description="Is Claude down, or is it just me? Status alerts for Slack and Discord." \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 aistatus \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin aistatus
COPY --from=build /opt/aistatus /opt/aistatus
# Config only from the environment (no .env in the image). The operator listener binds every
# interface inside the container, so the HEALTHCHECK, compose and Kubernetes probes reach it; the
# host decides what is published. REDIS_URL is required here: the image has no redis-server.
ENV PATH=/opt/aistatus/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AISTATUS_OPS_HOST=0.0.0.0 \
    AISTATUS_HTTP_HOST=0.0.0.0 \
    AISTATUS_HTTP_PORT=8080
WORKDIR /app
USER 10001:10001
# 8080: /healthz /readyz /metrics and the web board; 3000: Slack HTTP mode (AISTATUS_SLACK_MODE=http).
EXPOSE 8080 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AISTATUS_HTTP_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["aistatus"]
CMD ["run"]

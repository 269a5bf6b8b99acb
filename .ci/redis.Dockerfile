# CI only: a stand-in for the official redis:7 image, which CI cannot pull (no container registry is
# reachable there). Debian's redis-server package on the local Debian base, with the contract
# compose.yaml relies on: redis-server and redis-cli on PATH, data in /data, user redis = uid 999.
ARG BASE=localhost/ci/debian:bookworm
FROM ${BASE}
# The version is whatever the distribution ships (bookworm: 7.0), like the `redis:7` tag's minor.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/redis --shell /usr/sbin/nologin redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data \
 && chown redis:redis /data
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]

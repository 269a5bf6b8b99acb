# CI only: manifests/systemd/aistatus.service run by a real systemd (PID 1 of a podman container
# started with --systemd=always), with the aistatus virtualenv of the image under test in
# /opt/aistatus and Debian's redis-server for the private Redis: the unit's hardening is proven
# against the running bot, not only parsed. Build context: manifests/systemd.
ARG BASE=localhost/ci/python-base:bookworm
ARG APP=localhost/aistatus:ci
FROM ${APP} AS app

FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd systemd-sysv redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && systemctl disable redis-server \
 && systemctl mask systemd-logind.service getty.target console-getty.service
COPY --from=app /opt/aistatus /opt/aistatus
COPY aistatus.service /etc/systemd/system/aistatus.service
RUN systemctl enable aistatus.service
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/lib/systemd/systemd"]

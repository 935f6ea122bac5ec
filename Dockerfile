# Rampart's container image: a release build of `rampart` on Debian bookworm-slim.
#
#   podman build -t rampart .                       # or: docker build -t rampart .
#   podman run --rm -p 8080:8080 --read-only -v rampart-data:/var/lib/rampart rampart
#
# The server listens on 0.0.0.0:8080 with API tokens (the first run prints an admin token
# in the container's log; set RAMPART_AUTH_KEY to bootstrap with a static key instead), keeps
# its state under /var/lib/rampart (a volume: SQLite store, audit signing key, checkpoints)
# and writes nothing anywhere else, so the root file system can be read-only. It runs as
# uid/gid 10001. Reached under another name than localhost (a published port on another
# host, a proxy), add that name: -e RAMPART_ALLOWED_HOSTS=mcp.example.com.
# docs/deploy.md has Compose, Kubernetes and systemd.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- build ----------------------------------------------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The registry and target directories are build caches (BuildKit and Buildah/Podman both
# support cache mounts), so a rebuild after a code change recompiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p rampart-cli --locked \
 && install -D -m 0755 target/release/rampart /out/rampart

# ---- runtime --------------------------------------------------------------------------
FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim

# ca-certificates: HTTPS to upstream MCP servers, [http] APIs and JWKS (the system's trust
# store). tini: PID 1 that forwards signals (SIGTERM drains, SIGHUP reloads) and reaps the
# orphans of child processes (stdio upstreams, exec runs) — Rampart does not reap
# processes it did not start. Versions are Debian bookworm's (security updates come with a
# rebuild), hence no pins:
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rampart \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rampart --no-create-home \
      --shell /usr/sbin/nologin rampart \
 && install -d -m 0700 -o 10001 -g 10001 /var/lib/rampart \
 && install -d -m 0755 /etc/rampart

COPY --from=build /out/rampart /usr/local/bin/rampart
COPY deploy/docker/rampart-healthcheck /usr/local/bin/rampart-healthcheck

# Configuration: the environment (RAMPART_*) and, when mounted, /etc/rampart/rampart.toml
# (set RAMPART_CONFIG=/etc/rampart/rampart.toml). Secrets (RAMPART_DATABASE_URL,
# RAMPART_AUTH_KEY, RAMPART_CLUSTER_REDIS_URL) come from the environment, never the image.
ENV RAMPART_LISTEN=0.0.0.0:8080 \
    RAMPART_DATA_DIR=/var/lib/rampart \
    RAMPART_LOG_FORMAT=json

VOLUME ["/var/lib/rampart"]
# The working directory is read for ./rampart.toml and ./.env: an empty, read-only one.
WORKDIR /
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/rampart-healthcheck"]

# SIGTERM: in-flight calls finish (server.shutdown_grace_secs, 10 s), then the audit
# queue is stored; give the container at least 30 s to stop (compose stop_grace_period,
# Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/rampart"]
CMD ["serve"]

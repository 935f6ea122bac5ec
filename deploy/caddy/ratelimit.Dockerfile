# Optional: Caddy with a per-client-IP rate limit at the edge — the seeds' pattern (Caddy
# built with xcaddy and a plugin). Stock Caddy has no rate limiting; Rampart's own limits
# (per principal, shared through Redis) apply either way.
#
#   podman build -t rampart-caddy-ratelimit -f deploy/caddy/ratelimit.Dockerfile deploy/caddy
#
# Then, in deploy/compose.yaml, replace the caddy service's `image:` with
# `image: rampart-caddy-ratelimit`, and uncomment `order rate_limit before reverse_proxy`
# and the `rate_limit` block in deploy/caddy/Caddyfile.
#
# Not built by scripts/check-deploy.sh: it needs base images and the Go module proxy.
# Pin the plugin (…/caddy-ratelimit@vX.Y.Z) once you have chosen a version.
FROM docker.io/library/caddy:2.11-builder AS build
RUN xcaddy build --with github.com/mholt/caddy-ratelimit

FROM docker.io/library/caddy:2.11
COPY --from=build /usr/bin/caddy /usr/bin/caddy

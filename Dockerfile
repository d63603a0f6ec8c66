# actiongate as a container image: the single Bun-compiled binary on a slim Debian base.
#
#   docker build -t actiongate .
#   docker run --rm -p 8080:8080 -v "$PWD/config.yaml:/etc/actiongate/config.yaml:ro" actiongate
#
# See docs/deploy/README.md (health checks, the store volume, Kubernetes).

# --- build: npm installs Bun (a dev dependency), then `npm run build` writes dist/actiongate -----------
FROM node:20-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so that a source change does not re-run npm ci. stubs/ is an npm override target;
# scripts/npx is the dev dependency that gives a clone `npx actiongate`.
COPY package.json package-lock.json ./
COPY stubs ./stubs
COPY scripts/npx ./scripts/npx
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY examples/payloads/custom-action.json ./examples/payloads/custom-action.json
COPY scripts/build.ts ./scripts/build.ts
RUN npm run build && ./dist/actiongate --version

# --- run: glibc (the binary needs it), CA certificates for on-prem TLS, no shell tools beyond Debian's ---
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 actiongate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/actiongate --create-home --shell /usr/sbin/nologin actiongate
COPY --from=build /src/dist/actiongate /usr/local/bin/actiongate
# An example to start from; mount the real one over it (or set ACTIONGATE_CONFIG).
COPY config.yaml /etc/actiongate/config.yaml
ENV ACTIONGATE_CONFIG=/etc/actiongate/config.yaml
# store.path belongs here (e.g. /var/lib/actiongate/store.db) so that the outbox survives a new container.
VOLUME /var/lib/actiongate
WORKDIR /var/lib/actiongate
USER actiongate:actiongate
# 8080: server.port (epilot calls this); 9090: admin.port (/healthz, /readyz, /metrics) when `admin` is set.
EXPOSE 8080 9090
# No HEALTHCHECK: the admin listener is off unless the config has `admin`, the image has no curl, and
# Kubernetes ignores HEALTHCHECK (it uses the probes in docs/deploy/kubernetes-sidecar.yaml). For plain
# Docker, docs/deploy/README.md gives a --health-cmd that needs only bash.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/actiongate"]
CMD ["serve"]

# syntax=docker/dockerfile:1
# The Relaywatch service image (`relaywatch`, API and worker). Build from the repository root:
#   docker build -f deploy/docker/relaywatch.Dockerfile -t relaywatch:0.1.0 .
# Run: docker run -p 8080:8080 -v relaywatch-data:/var/lib/relaywatch relaywatch:0.1.0
#   (first start prints the installation admin's key and password once: `docker logs <container>`).

ARG RUST_VERSION=1.94
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target directory between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin relaywatch \
    && install -m 0755 target/release/relaywatch /usr/local/bin/relaywatch

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: MTA-STS fetches and SMTP TLS checks of the worker's audits; curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 relaywatch \
    && useradd --system --uid 10001 --gid relaywatch --home-dir /var/lib/relaywatch --no-create-home \
       --shell /usr/sbin/nologin relaywatch \
    && install -d -m 0700 -o relaywatch -g relaywatch /var/lib/relaywatch
COPY --from=build /usr/local/bin/relaywatch /usr/local/bin/relaywatch
COPY deploy/relaywatch.example.toml /etc/relaywatch/relaywatch.toml
# Settings come from RELAYWATCH_* variables (RELAYWATCH_DATABASE_URL, RELAYWATCH_SIGNING_SECRET, ...), see
# deploy/relaywatch.example.toml; these two make the container reachable and keep its data on the volume.
ENV RELAYWATCH_LISTEN=0.0.0.0:8080 \
    RELAYWATCH_DATA_DIR=/var/lib/relaywatch \
    RELAYWATCH_CONFIG=/etc/relaywatch/relaywatch.toml
USER 10001:10001
WORKDIR /var/lib/relaywatch
VOLUME ["/var/lib/relaywatch"]
EXPOSE 8080
# Liveness: /healthz answers without touching the database (/readyz also checks it).
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/relaywatch"]
CMD ["serve"]

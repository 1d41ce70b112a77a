# syntax=docker/dockerfile:1
# The relaywatch-agent image, for mail hosts that run Postfix in containers. Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t relaywatch-agent:0.1.0 .
# Run with the mail log mounted read-only and a volume for the checkpoint and spool:
#   docker run -v /var/log/mail.log:/var/log/mail.log:ro -v agent-state:/var/lib/relaywatch-agent \
#     --group-add "$(stat -c %g /var/log/mail.log)" -e RELAYWATCH_AGENT_API_URL=https://relaywatch.example.com \
#     -e RELAYWATCH_AGENT_API_KEY_FILE=/run/secrets/agent.key ... relaywatch-agent:0.1.0
# (--group-add gives the non-root agent the log's group, as SupplementaryGroups=adm does in the systemd unit.)

ARG RUST_VERSION=1.94
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin relaywatch-agent \
    && install -m 0755 target/release/relaywatch-agent /usr/local/bin/relaywatch-agent

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: the API's TLS certificate; curl: the health check against the agent's metrics listener.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10002 relaywatch-agent \
    && useradd --system --uid 10002 --gid relaywatch-agent --home-dir /var/lib/relaywatch-agent --no-create-home \
       --shell /usr/sbin/nologin relaywatch-agent \
    && install -d -m 0700 -o relaywatch-agent -g relaywatch-agent /var/lib/relaywatch-agent
COPY --from=build /usr/local/bin/relaywatch-agent /usr/local/bin/relaywatch-agent
# Configuration by RELAYWATCH_AGENT_* variables (see deploy/relaywatch-agent.example.toml) or a mounted
# /etc/relaywatch/agent.toml with `--config`.
ENV RELAYWATCH_AGENT_STATE_DIR=/var/lib/relaywatch-agent \
    RELAYWATCH_AGENT_LOGS=/var/log/mail.log \
    RELAYWATCH_AGENT_METRICS_LISTEN=127.0.0.1:9187
USER 10002:10002
WORKDIR /var/lib/relaywatch-agent
VOLUME ["/var/lib/relaywatch-agent"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9187/metrics"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/relaywatch-agent"]
CMD ["run"]

# ciq-gateway: multi-stage build, small non-root runtime.
# docker build -t ciq-gateway .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ciq-gateway \
 && strip target/release/ciq-gateway

FROM debian:bookworm-slim
# curl only for the container health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ciq
COPY --from=build /src/target/release/ciq-gateway /usr/local/bin/ciq-gateway
USER 10001:10001
ENV CIQ_LISTEN=0.0.0.0:8080 \
    CIQ_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=2s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["ciq-gateway"]
CMD ["serve"]

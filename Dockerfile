# syntax=docker/dockerfile:1
# run-job in one image, two targets:
#   slim      (default) the binary, CA certificates and an init: every job but scraping
#   chromium  slim + Debian's Chromium and fonts: the scraping job
# Build both for both architectures and push them as <tag> and <tag>-chromium:
#   docker buildx build --platform linux/amd64,linux/arm64 --target slim     -t $REPO:$TAG --push .
#   docker buildx build --platform linux/amd64,linux/arm64 --target chromium -t $REPO:$TAG-chromium --push .
# A job's declaration (`image: slim | chromium`) says which one its task runs.
#
# Base images are pinned by version tag; pin digests too when you first build
# (docker buildx imagetools inspect rust:1.95.0-slim-bookworm): this workplace
# cannot reach a registry to read them.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- dependencies, cached in their own layer (cargo-chef) ----
FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Only the dependencies: this layer survives every change to our own code.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# No features: the demo jobs and the dLocal sandbox never reach an image.
RUN cargo build --release --locked --bin run-job \
    && install -m 0755 target/release/run-job /usr/local/bin/run-job

# ---- runtime: slim ----
FROM ${DEBIAN_IMAGE} AS slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* tini=0.19.0-1* \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/run-job /usr/local/bin/run-job
# Amazon RDS's CA bundle, for DATABASE_SSLMODE=verify-full (rustls trusts only public roots).
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# ECS mounts a writable volume on /tmp; declaring it keeps the image's 1777 mode there, so
# the non-root user can write (a bind mount alone is root-owned 0755).
RUN chmod 1777 /tmp
VOLUME ["/tmp"]
# Non-root, numeric so ECS and Kubernetes can check it without /etc/passwd lookups.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin runjob
USER 10001:10001
ENV RUN_JOB_LOG_FORMAT=json
# tini is PID 1: it forwards SIGTERM to run-job and reaps Chromium's orphans.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/run-job"]
CMD ["--help"]

# ---- runtime: chromium (scraping) ----
FROM slim AS chromium
USER 0
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium=156.* fonts-liberation=1:1.07.4* fonts-noto-color-emoji=2.* \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
# The real binary, not the /usr/bin/chromium shell wrapper (which adds flags of its own).
ENV SCRAPER_CHROMIUM_PATH=/usr/lib/chromium/chromium

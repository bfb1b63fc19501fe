# run-job in one image, two targets (choose with --target):
#   slim      the binary, CA certificates and an init: every job but scraping
#   chromium  slim + Debian's Chromium headless shell and fonts: the scraping job
# Build both for both architectures and push them as <tag> and <tag>-chromium, giving the
# RDS CA bundle's SHA-256 (docs/deploying.md, "The RDS CA bundle"):
#   docker buildx build --platform linux/amd64,linux/arm64 --target slim     --build-arg RDS_CA_BUNDLE_SHA256 -t $REPO:$TAG --push .
#   docker buildx build --platform linux/amd64,linux/arm64 --target chromium --build-arg RDS_CA_BUNDLE_SHA256 -t $REPO:$TAG-chromium --push .
# A job's declaration (`image: slim | chromium`) says which one its task runs.
#
# Base images are pinned by version tag; pin digests too when you first build
# (docker buildx imagetools inspect rust:1.95.0-slim-bookworm): this workplace
# cannot reach a registry to read them.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: on the build machine's own architecture, cross-compiling for the target's ----
# Emulating arm64 to compile would take hours; cross-compiling takes as long as a native
# build. aws-lc and libwebp are C, hence Debian's cross gcc for a foreign target.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef
ARG TARGETARCH
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; cross=x86-64; libc=amd64 ;; \
      arm64) triple=aarch64-unknown-linux-gnu; cross=aarch64; libc=arm64 ;; \
      *) echo "no build for TARGETARCH=$TARGETARCH" >&2; exit 1 ;; \
    esac; \
    if [ "$(dpkg --print-architecture)" != "$TARGETARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "gcc-$cross-linux-gnu=4:12.2.*" "libc6-dev-$libc-cross=2.36-*"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$triple"; \
    echo "$triple" > /target-triple
# The native gcc answers to its triple's name too, so these hold in both directions.
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- dependencies, cached in their own layer (cargo-chef) ----
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Only the dependencies: this layer survives every change to our own code.
RUN cargo chef cook --release --locked --target "$(cat /target-triple)" --recipe-path recipe.json
COPY . .
# No features: the demo jobs and the dLocal sandbox never reach an image.
RUN triple="$(cat /target-triple)" \
    && cargo build --release --locked --target "$triple" --bin run-job \
    && install -m 0755 "target/$triple/release/run-job" /usr/local/bin/run-job

# ---- runtime: slim ----
FROM ${DEBIAN_IMAGE} AS slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* tini=0.19.0-1* \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/run-job /usr/local/bin/run-job
# Amazon RDS's CA bundle, for DATABASE_SSLMODE=verify-full (rustls trusts only public roots).
# The URL is a build argument only so that a build without internet access can point it
# elsewhere (scripts/build-images-offline); hadolint cannot see that the variable holds a
# URL. The bundle decides which database certificates the jobs trust, so the build needs
# its SHA-256, obtained once over a channel you trust and kept with the build
# (docs/deploying.md, "The RDS CA bundle"), and fails without it or on any other file.
# A RUN rather than ADD --checksum: that flag needs Dockerfile syntax 1.6, which Debian's
# docker.io cannot fetch offline.
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
ARG RDS_CA_BUNDLE_SHA256
# hadolint ignore=DL3020
ADD ${RDS_CA_BUNDLE_URL} /etc/ssl/certs/rds-global-bundle.pem
# ECS mounts a writable volume on /tmp; declaring it keeps the image's 1777 mode there, so
# the non-root user can write (a bind mount alone is root-owned 0755).
RUN set -eu; \
    case "${RDS_CA_BUNDLE_SHA256:-}" in \
      *[!0-9a-f]*|"") echo "RDS_CA_BUNDLE_SHA256 must be the bundle's SHA-256 (64 lowercase hex digits; docs/deploying.md)" >&2; exit 1 ;; \
    esac; \
    [ "${#RDS_CA_BUNDLE_SHA256}" -eq 64 ] || { echo "RDS_CA_BUNDLE_SHA256 must be 64 hex digits" >&2; exit 1; }; \
    echo "$RDS_CA_BUNDLE_SHA256  /etc/ssl/certs/rds-global-bundle.pem" > /tmp/rds-global-bundle.sha256; \
    sha256sum -c /tmp/rds-global-bundle.sha256; \
    rm /tmp/rds-global-bundle.sha256; \
    chmod 644 /etc/ssl/certs/rds-global-bundle.pem && chmod 1777 /tmp
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
    && apt-get install -y --no-install-recommends chromium-headless-shell=156.* fonts-liberation=1:1.07.4* fonts-noto-color-emoji=2.* \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
# The headless shell: the same Chromium build as the `chromium` package without GTK,
# cairo, pango, cups or Mesa's drivers, which a headless crawl never draws with.
ENV SCRAPER_CHROMIUM_PATH=/usr/lib/chromium/chromium-headless-shell

# ledgerd container image.
#
# Build:  docker build -t ledgerd:0.1.0 \
#           --build-arg VERSION=0.1.0 \
#           --build-arg REVISION=$(git rev-parse HEAD) \
#           --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
# Run:    docker run --rm -p 3000:3000 -e DATABASE_URL=... -e AMQP_URL=... ledgerd:0.1.0
#
# Stage 1 compiles a static binary; stage 2 copies it into a distroless image
# that has no shell and no package manager and runs as a non-root user.

# Build arguments. Each stage re-declares those it uses (an ARG before the
# first FROM is only a default).
#   VERSION   the release: `ledgerd --version`, ledger_build_info{version}
#             and the image's org.opencontainers.image.version
#   REVISION  the Git commit: ledger_build_info{revision} and
#             org.opencontainers.image.revision. Pass it: .git is not in the
#             build context (.dockerignore), so Go cannot stamp it itself.
#   CREATED   the build time, RFC 3339 (org.opencontainers.image.created);
#             empty unless passed.
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
# Pinned by tag. For production builds pin by digest as well, e.g.
#   FROM golang:1.26-bookworm@sha256:<digest> AS build
# so that a re-pushed tag cannot change the toolchain underneath you.
# The Go version here must be >= the `go` directive in go.mod
# (deploy/deploy_test.go checks this).
FROM golang:1.26-bookworm AS build

WORKDIR /src

# Download modules in their own layer so that it is cached until
# go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .

ARG VERSION
ARG REVISION
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/ledgerd ./cmd/ledgerd

# ---------------------------------------------------------------------------
# Final stage
# ---------------------------------------------------------------------------
# Distroless static: CA certificates, tzdata and /etc/passwd only; no shell.
# The :nonroot variant's default user is nonroot (65532). Pin by digest for
# production as above.
FROM gcr.io/distroless/static-debian12:nonroot

# OCI image annotations (https://github.com/opencontainers/image-spec,
# annotations.md), read by registries, scanners and `docker inspect`.
# licenses is an SPDX expression: NOASSERTION until the repository has a
# LICENSE file (deploy/deploy_test.go then requires the real one).
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="ledgerd" \
      org.opencontainers.image.description="Balance ledger service: exact amounts, an append-only hash-chained ledger in PostgreSQL, events to RabbitMQ through an outbox" \
      org.opencontainers.image.source="https://github.com/ledgerd/ledgerd" \
      org.opencontainers.image.documentation="https://github.com/ledgerd/ledgerd/blob/main/docs/operations.md" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=build /out/ledgerd /ledgerd

EXPOSE 3000

USER 65532:65532

# There is no shell in this image, so no shell-based HEALTHCHECK here.
# docker-compose.yml probes with the binary itself: `/ledgerd healthcheck`.
ENTRYPOINT ["/ledgerd"]
CMD ["serve"]

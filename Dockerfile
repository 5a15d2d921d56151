# ledgerd container image.
#
# Build:  docker build --build-arg VERSION=$(git describe --tags --always) -t ledgerd .
# Run:    docker run --rm -p 3000:3000 -e DATABASE_URL=... -e AMQP_URL=... ledgerd
#
# Stage 1 compiles a static binary; stage 2 copies it into a distroless image
# that has no shell and no package manager and runs as a non-root user.

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

ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ledgerd ./cmd/ledgerd

# ---------------------------------------------------------------------------
# Final stage
# ---------------------------------------------------------------------------
# Distroless static: CA certificates, tzdata and /etc/passwd only; no shell.
# The :nonroot variant's default user is nonroot (65532). Pin by digest for
# production as above.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/ledgerd /ledgerd

EXPOSE 3000

USER 65532:65532

# There is no shell in this image, so no shell-based HEALTHCHECK here.
# docker-compose.yml probes with the binary itself: `/ledgerd healthcheck`.
ENTRYPOINT ["/ledgerd"]
CMD ["serve"]

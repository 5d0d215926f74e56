# Builds a static manager binary and runs it on distroless as a non-root user.
#
# Multi-arch: `make docker-buildx` builds every platform in PLATFORMS; the
# builder stage runs on the build machine's platform and cross-compiles for
# TARGETOS/TARGETARCH, so no emulation is needed.
#
# Release step: pin both base images by digest (image:tag@sha256:...), taking
# the digests from `docker buildx imagetools inspect golang:1.26` and
# `docker buildx imagetools inspect gcr.io/distroless/static:nonroot`.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags="-s -w -X github.com/token-operator/token-operator/internal/version.Version=${VERSION} -X github.com/token-operator/token-operator/internal/version.Commit=${COMMIT} -X github.com/token-operator/token-operator/internal/version.Date=${DATE}" \
    -o manager ./cmd/manager

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
ARG SOURCE=https://github.com/token-operator/token-operator
LABEL org.opencontainers.image.title="token-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps OAuth2 access tokens fresh in Secrets that pods mount" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]

# erpgraph's container image: a static binary (no cgo, no libc) on distroless
# "static", running as an unprivileged user. Build: docker build -t erpgraph .
# CI builds the same binary with the same command (deploy/image_test.go) and
# runs it, since no image can be built or pulled there.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/erpgraph .

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), tzdata; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/erpgraph /erpgraph
USER 65532:65532
# Inside a container erpgraph listens on every interface (its default is loopback).
ENV ERPGRAPH_ADDR=0.0.0.0:8080
EXPOSE 8080 9090
ENTRYPOINT ["/erpgraph"]
CMD ["serve"]

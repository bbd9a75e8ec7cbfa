# rmq in a container.
#
# Default target (`docker build .`, `docker compose up`): builds the binary
# in the Go image, then copies it into an empty (scratch) image.
#
# Where no image registry is reachable, build the binary here first and use
# the prebuilt target, which needs no base image at all:
#   CGO_ENABLED=0 go build -trimpath -o rmq ./cmd/rmq
#   docker build --target prebuilt -t rmq:dev .     (or podman build)
# Stages the chosen target does not need are skipped.

# No VOLUME line: brokers get /data from a named volume in docker-compose.yml,
# and a VOLUME here would give every container (the NameServer too) an
# anonymous volume that 'down -v' leaves behind.
FROM scratch AS prebuilt
COPY rmq /rmq
ENTRYPOINT ["/rmq"]

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/rmq ./cmd/rmq

FROM scratch AS image
COPY --from=build /out/rmq /rmq
ENTRYPOINT ["/rmq"]

# One image for every kooflow command: `kooflow worker`, `kooflow webhook`, operator tools.
# Build: docker build -t kooflow .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (modernc SQLite, pgx): a static binary with no libc. The empty kooflow-data
# directory is copied into the image below.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kooflow ./cmd/kooflow && \
    mkdir -p /out/kooflow-data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kooflow /usr/local/bin/kooflow
# The data directory (statements and reports) exists in the image, owned by the user that
# writes it (65532, distroless's nonroot): a named volume mounted here starts as a copy of
# it, owner included. Without it Docker would create the mount point owned by root, and the
# non-root worker could not write.
COPY --from=build --chown=65532:65532 /out/kooflow-data /home/nonroot/kooflow-data
USER 65532:65532
WORKDIR /home/nonroot
ENV KOOFLOW_DATA_DIR=/home/nonroot/kooflow-data
EXPOSE 8080 8280 9090
ENTRYPOINT ["/usr/local/bin/kooflow"]
CMD ["--help"]

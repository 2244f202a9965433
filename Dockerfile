# One image for every kooflow command: `kooflow worker`, `kooflow webhook`, operator tools.
# Build: docker build -t kooflow .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (modernc SQLite, pgx): a static binary with no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kooflow ./cmd/kooflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kooflow /usr/local/bin/kooflow
USER nonroot:nonroot
WORKDIR /home/nonroot
ENV KOOFLOW_DATA_DIR=/home/nonroot/kooflow-data
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/kooflow"]
CMD ["--help"]

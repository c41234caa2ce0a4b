# The Go original's vipservice (P9) stand-in, tools/go-p9-vipservice: consumes vip_queue as the
# Go code does (non-durable classic queue, auto-ack, tag vipservice) and prints
# `Got a message: <body>` per delivery, for rehearsing the move off the Go original on a swarm
# (scripts/swarm-e2e.sh: `docker service create --name=vipservice ... IMAGE` beside our
# accountservice in the compatibility mode). A test image: no service depends on it.
#
# Build context: a folder holding `go-p9-vipservice` and `healthchecker`, static as the
# services' binaries are (scripts/build-static.sh go-p9-vipservice healthchecker);
# scripts/build-go-p9-image.sh stages it.
FROM scratch

COPY go-p9-vipservice healthchecker /
# nobody:nogroup, by number: scratch has no /etc/passwd. It writes nothing.
USER 65534:65534

EXPOSE 6868

# GET /health answers 200 `OK`, as Go's vipservice does, so the same probe as ours works.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/healthchecker", "--port=6868"]

# The broker is Go's amqp_server_url, amqp://guest:guest@rabbitmq:5672/, unless --amqp-url
# (or AMQP_URL) says otherwise.
ENTRYPOINT ["/go-p9-vipservice"]

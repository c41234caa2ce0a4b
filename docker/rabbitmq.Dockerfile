# RabbitMQ (Debian bookworm's rabbitmq-server 3.10) with the management plugin, for the stack,
# and the Prometheus one: per-queue figures on 15692 (/metrics/detailed), which the stack's
# Prometheus (docker/docker-stack.monitoring.yml) scrapes.
#
# No registry can be reached here, so there is no `FROM rabbitmq:3-management`: the base is a
# Debian root file system made by debootstrap with rabbitmq-server already installed and
# imported with `docker import` (scripts/build-rabbitmq-image.sh makes it and caches it).
# Build context: docker/rabbitmq/.
ARG BASE_IMAGE=goblog-rs/debian-rabbitmq-base:bookworm
FROM ${BASE_IMAGE}

COPY rabbitmq.conf enabled_plugins /etc/rabbitmq/
COPY amqp-ping /usr/local/bin/amqp-ping
# conf.d/ receives the credentials secret; RabbitMQ reads every *.conf there after rabbitmq.conf.
RUN mkdir -p /etc/rabbitmq/conf.d \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq \
 && chmod 0755 /usr/local/bin/amqp-ping

# A fixed node name keeps the node's data directory the same from one container to the next
# (the container's host name changes every time), so a volume on /var/lib/rabbitmq is reused.
ENV HOME=/var/lib/rabbitmq \
    RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_LOGS=- \
    LANG=C.UTF-8
USER rabbitmq
WORKDIR /var/lib/rabbitmq
EXPOSE 5672 15672 15692

HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=5 CMD ["/usr/local/bin/amqp-ping"]

# Debian's /usr/sbin/rabbitmq-server wrapper sends the log to files under /var/log; run the
# real script so the log reaches standard output and SIGTERM reaches the broker.
ENTRYPOINT ["/usr/lib/rabbitmq/bin/rabbitmq-server"]

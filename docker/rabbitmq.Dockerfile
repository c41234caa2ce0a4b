# RabbitMQ 4.0 (Debian trixie's rabbitmq-server 4.0.5, Erlang 27) with the management plugin,
# and the Prometheus one: per-queue figures on 15692 (/metrics/detailed), which the stack's
# Prometheus (docker/docker-stack.monitoring.yml) scrapes. One image for both uses: alone, a
# standalone broker (the article's `docker service create --name=rabbitmq`); given the
# environment docker/docker-stack.yml sets, a node of a three-node cluster (rabbitmq-1, -2, -3;
# docker/rabbitmq/entrypoint says which variables).
#
# No registry can be reached here, so there is no `FROM rabbitmq:4-management`: the base is a
# Debian root file system made by debootstrap with rabbitmq-server already installed and
# imported with `docker import` (scripts/build-rabbitmq-image.sh makes it and caches it).
# Build context: docker/rabbitmq/.
ARG BASE_IMAGE=goblog-rs/debian-rabbitmq-base:trixie
FROM ${BASE_IMAGE}

COPY rabbitmq.conf enabled_plugins cluster.conf /etc/rabbitmq/
COPY amqp-ping entrypoint /usr/local/bin/
# conf.d/ receives the credentials secret, and the entrypoint's fragments (memory limit,
# cluster); RabbitMQ reads every *.conf there after rabbitmq.conf, in name order.
RUN mkdir -p /etc/rabbitmq/conf.d \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq \
 && chmod 0755 /usr/local/bin/amqp-ping /usr/local/bin/entrypoint

# A fixed node name keeps the node's data directory the same from one container to the next
# (the container's host name changes every time), so a volume on /var/lib/rabbitmq is reused;
# the stack's cluster nodes set their own (rabbit@rabbitmq-N, their service's host name).
# HOME is where the broker and the CLI tools find the Erlang cookie.
ENV HOME=/var/lib/rabbitmq \
    RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_LOGS=- \
    LANG=C.UTF-8
USER rabbitmq
WORKDIR /var/lib/rabbitmq
EXPOSE 4369 5672 15672 15692 25672

HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=5 CMD ["/usr/local/bin/amqp-ping"]

# Writes the cookie and the cluster's and memory's config fragments the environment asks for,
# then execs the broker's own script (not Debian's /usr/sbin wrapper, which sends the log to
# files under /var/log), so the log reaches standard output and SIGTERM reaches the broker.
ENTRYPOINT ["/usr/local/bin/entrypoint"]

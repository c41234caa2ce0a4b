# Prometheus (Debian bookworm's prometheus 2.42) for the stack's monitoring overlay
# (docker/docker-stack.monitoring.yml): scrapes both services and RabbitMQ's plugin as
# docker/prometheus/prometheus.yml says, baked in (the image is rebuilt on every deploy).
#
# No registry can be reached here, so there is no `FROM prom/prometheus`: the base is a Debian
# root file system made by debootstrap with the prometheus package already installed and
# imported with `docker import` (scripts/build-prometheus-image.sh makes it and caches it).
# Build context: docker/prometheus/.
ARG BASE_IMAGE=goblog-rs/debian-prometheus-base:bookworm
FROM ${BASE_IMAGE}

COPY prometheus.yml /etc/prometheus/prometheus.yml
COPY prometheus-ready /usr/local/bin/prometheus-ready
# The TSDB directory, owned by the package's system user: a new named volume mounted there
# takes this ownership, so the server can write it without root.
RUN mkdir -p /var/lib/prometheus/metrics2 \
 && chown prometheus:prometheus /var/lib/prometheus/metrics2 \
 && chmod 0755 /usr/local/bin/prometheus-ready

USER prometheus
WORKDIR /var/lib/prometheus
EXPOSE 9090
VOLUME /var/lib/prometheus/metrics2

# Neither promtool (left out of the image) nor curl/wget is there: bash asks /-/ready itself.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/prometheus-ready"]

# The package's init script would log to a file and background the server: run it directly,
# so the log reaches standard output and SIGTERM reaches Prometheus. Two days of samples are
# plenty for a dashboard of rates; the stack may pass other flags as its command.
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/var/lib/prometheus/metrics2", \
     "--storage.tsdb.retention.time=2d", \
     "--web.listen-address=:9090"]

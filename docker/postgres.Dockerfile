# PostgreSQL (Debian bookworm's postgresql 15) for the stack: the offers database that every
# vipservice replica shares and accountservice's outbox, a role and a database each.
#
# No registry can be reached here, so there is no `FROM postgres:15`: the base is a Debian
# root file system made by debootstrap with postgresql already installed and imported with
# `docker import` (scripts/build-postgres-image.sh makes it and caches it, without the
# cluster Debian's postinst creates). Build context: docker/postgres/.
#
# Run alone (the data directory is made on the volume at first start):
#   docker run -d --name pg -v pgdata:/var/lib/postgresql/data \
#     -v "$PWD/docker/secrets/offers-db-password:/run/secrets/offers_db_password:ro" \
#     -v "$PWD/docker/secrets/outbox-db-password:/run/secrets/outbox_db_password:ro" IMAGE
#   docker exec pg psql -d offers
ARG BASE_IMAGE=goblog-rs/debian-postgres-base:bookworm
FROM ${BASE_IMAGE}

COPY postgresql.conf pg_hba.conf /etc/postgresql/goblog/
COPY entrypoint /usr/local/bin/postgres-entrypoint
# The volume's mount point, owned by postgres: Docker copies owner and mode onto a new named
# volume. The server's data directory is a folder inside it ($PGDATA), as initdb wants one it
# can create (a mount point may hold lost+found).
RUN mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown postgres:postgres /var/lib/postgresql/data /run/postgresql \
 && chmod 0700 /var/lib/postgresql/data \
 && chmod 2775 /run/postgresql \
 && chmod 0755 /usr/local/bin/postgres-entrypoint \
 && chmod 0644 /etc/postgresql/goblog/*

# The server's own binaries first: /usr/bin's psql and pg_isready are Debian's wrappers, which
# look for clusters under /etc/postgresql (there are none).
ENV PG_MAJOR=15 \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data/pgdata \
    PGHOST=/run/postgresql \
    LANG=C.UTF-8
USER postgres
WORKDIR /var/lib/postgresql
EXPOSE 5432

# Cheap: a connection attempt over TCP, as the replicas connect (no password needed to learn
# that the server accepts connections). Not healthy while the entrypoint's setup server runs:
# that one listens on no TCP port.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
  CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-d", "offers", "-U", "vipservice", "-t", "3"]

# SIGTERM (docker stop, Swarm) → fast shutdown: see the entrypoint.
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]

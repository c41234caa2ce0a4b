# accountservice: the static release binary and healthchecker, nothing else (as the original's
# copyall.sh did: build on the host, add the binary to a tiny image). No registry pull is
# needed: FROM scratch is built in.
#
# Build context: a folder holding `accountservice` and `healthchecker`, both built with
#   scripts/build-static.sh   (RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static', --target x86_64-unknown-linux-gnu)
# an empty `data/` and the repository's `config-repo/`; copyall.sh stages it. They are fully
# static (glibc 2.36 resolves names through /etc/hosts and DNS without NSS modules), so no libc
# or loader is needed here.
#
# Config: the image carries config-repo/ at /config-repo and starts with profile `article`
# (the CMD below): the broker `rabbitmq` with guest/guest, the stores under /data in the task,
# nothing else needed, so `docker service create --network=my_network IMAGE` beside a service
# named rabbitmq works as in the article (README, "The article's way"). The stack mounts its
# Swarm configs over the same files and passes `--profile=test`; `--config-server-url` reads a
# config server instead. Profiles: config-repo/README.md.
FROM scratch

COPY accountservice healthchecker /
COPY config-repo/ /config-repo/
# A writable working directory for the embedded database (a relative path in the settings
# lands here). Owned by the unprivileged user below; scratch has no /tmp or home to fall back on.
COPY --chown=65534:65534 data/ /data/
WORKDIR /data
# nobody:nogroup, by number: scratch has no /etc/passwd.
USER 65534:65534

EXPOSE 6767

# Same figures as docker/docker-stack.yml, so the image is healthy-checked under plain
# `docker run` too. healthchecker answers within 2 s, so a 3 s timeout never cuts it short.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/healthchecker", "--port=6767"]

# The config flags are the CMD rather than part of the ENTRYPOINT so that a stack file (or
# `docker run IMAGE --flags`, `docker service update --args`) can replace them whole: the
# stack's profile test, `--profile=article,migration` beside the Go original, or a Spring Cloud
# Config server (docker/docker-stack.config-server.yml) instead of the files.
ENTRYPOINT ["/accountservice"]
CMD ["--config-repo=/config-repo", "--profile=article"]

# vipservice: the static release binary and healthchecker, nothing else (as the original's
# copyall.sh did: build on the host, add the binary to a tiny image). No registry pull is
# needed: FROM scratch is built in.
#
# Build context: a folder holding `vipservice` and `healthchecker`, both built with
#   scripts/build-static.sh   (RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static', --target x86_64-unknown-linux-gnu)
# and an empty `data/`; copyall.sh stages it. They are fully static (glibc 2.36 resolves
# names through /etc/hosts and DNS without NSS modules), so no libc or loader is needed here.
#
# Config: the stack mounts the config-repo/ files as Swarm configs under /config-repo/. To run
# the image alone: docker run -v "$PWD/config-repo:/config-repo:ro" -p 6868:6868 IMAGE
FROM scratch

COPY vipservice healthchecker /
# A writable working directory for the embedded database (a relative path in the settings
# lands here). Owned by the unprivileged user below; scratch has no /tmp or home to fall back on.
COPY --chown=65534:65534 data/ /data/
WORKDIR /data
# nobody:nogroup, by number: scratch has no /etc/passwd.
USER 65534:65534

EXPOSE 6868

# Same figures as docker/docker-stack.yml, so the image is healthy-checked under plain
# `docker run` too. healthchecker answers within 2 s, so a 3 s timeout never cuts it short.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/healthchecker", "--port=6868"]

# The config flags are the CMD rather than part of the ENTRYPOINT so that a stack file (or
# `docker run IMAGE --flags`) can replace them whole, e.g. to point the service at a Spring
# Cloud Config server (docker/docker-stack.config-server.yml) instead of the mounted files.
ENTRYPOINT ["/vipservice"]
CMD ["--config-repo=/config-repo", "--profile=test"]

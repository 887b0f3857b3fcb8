# sandbox-agent as PID 1 of a minimal image: `make image` assembles build/rootfs (the static
# agent, a static busybox with its applet links, /workspace, /tmp) and builds this with that
# directory as the context. Nothing is pulled.
#
#   podman run -d -p 127.0.0.1:7777:7777 -e SANDBOX_AGENT_JWT_SECRET=... localhost/sandbox-agent
#   (or mount a secret file and set SANDBOX_AGENT_JWT_SECRET_FILE to its path)
#
# The agent reaps every orphan as PID 1 and, on `podman stop` (SIGTERM), TERMs every process,
# waits --grace (SANDBOX_AGENT_GRACE, default 5 s; keep it under the engine's stop timeout,
# 10 s by default), KILLs the rest and exits 0.
FROM scratch
COPY . /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root
WORKDIR /workspace
EXPOSE 7777
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sandbox-agent"]

# The claude-bottle agent image: Debian slim, the tools a coding agent reaches for, Claude Code
# from npm, and the unprivileged user `node` (home /home/node) the agent runs as.
#
# Built by bottle-docker with the classic builder (no BuildKit-only syntax) from a context that
# holds this file and `build-cas/`: the build host's locally added CA certificates, so that apt and
# npm work behind a TLS-intercepting company proxy. Build args:
#   BASE_IMAGE           the Debian-like base (default debian:bookworm-slim)
#   CLAUDE_CODE_VERSION  the npm version of @anthropic-ai/claude-code (bottle-docker passes its
#                        pinned default, the manifest's image.claude_code_version or
#                        CLAUDE_BOTTLE_CLAUDE_CODE_VERSION)
# A replacement Dockerfile gets the same context and args.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG CLAUDE_CODE_VERSION=2.1.332
ARG DEBIAN_FRONTEND=noninteractive

# Build-time trust only: the build host's extra CAs are installed for apt and npm here and
# removed again in the last step, so the running agent trusts Debian's roots plus its bottle CA.
COPY build-cas/ /usr/local/share/ca-certificates/claude-bottle-build/

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    update-ca-certificates; \
    apt-get install -y --no-install-recommends \
        git curl openssh-client less procps \
        nodejs npm \
        python3; \
    rm -rf /var/lib/apt/lists/*

# The agent user, with the uid/gid of the official node images so bind-mounted trees line up.
RUN set -eux; \
    groupadd --gid 1000 node; \
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node; \
    install -d -o node -g node /home/node/.claude /home/node/.claude/skills /home/node/workspace

RUN set -eux; \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
        npm install --global --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}"; \
    npm cache clean --force; \
    # npm 9 installs every optional platform binary; the agent is glibc, so the musl one
    # (~369 MiB) is never run. Removed in this RUN so no layer keeps it.
    rm -rf /usr/local/lib/node_modules/@anthropic-ai/claude-code/node_modules/@anthropic-ai/claude-code-linux-x64-musl; \
    claude --version; \
    rm -rf /usr/local/share/ca-certificates/claude-bottle-build; \
    update-ca-certificates --fresh

USER node
WORKDIR /home/node/workspace
ENV HOME=/home/node
CMD ["sleep", "infinity"]

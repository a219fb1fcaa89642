# gitlab-copilot-agent: one image, four commands.
#   API (default):      uvicorn api.app:create_app --factory --host 0.0.0.0 --port 8000
#   Worker:             python worker.py
#   Bootstrap (once):   python worker.py bootstrap
#   Agent Job runner:   python -m executors.job_runner
# Build: docker build -t gitlab-copilot-agent:dev .   (amd64 and arm64 alike: --platform linux/arm64)

ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm
ARG NODE_IMAGE=node:22.21.1-bookworm-slim

# --- Copilot CLI: pinned by package-lock.json, unpacked once so no pod pays the 235 MB first run ----------
# npm installs only the platform package of the build's CPU (@github/copilot-linux-x64 or -arm64); the
# service finds it by the same rule at run time (contracts/settings.py: bundled_copilot).
FROM ${NODE_IMAGE} AS copilot
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/tools
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
RUN clis=(node_modules/@github/copilot-linux*/copilot) \
    && { test -x "${clis[0]}" || { echo "no Copilot CLI for $(uname -m) in node_modules/@github" >&2; exit 1; }; } \
    && XDG_CACHE_HOME=/opt/copilot-cache "${clis[0]}" --version \
    && test -d /opt/copilot-cache/copilot/pkg

# --- Python dependencies: exactly the pinned lock, no resolver at build time -------------------------------
FROM ${PYTHON_IMAGE} AS python-deps
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock \
    && /opt/venv/bin/pip check

# --- Runtime ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian packages pinned (hadolint DL3008) to bookworm's current versions; a point release that
# retires one fails the build with "Version ... not found": bump it here or pass --build-arg.
ARG GIT_VERSION=1:2.39.5-0+deb12u3
ARG CA_CERTIFICATES_VERSION=20250419~deb12u2
ARG BUBBLEWRAP_VERSION=0.8.0-2+deb12u1
# git clones and pushes MR branches; bubblewrap is the local executor's agent sandbox (it needs user
# namespaces from the container runtime: docs/security.md); nothing else is added to the slim base.
# Then no setuid/setgid binaries are left, so nothing in the container can gain privileges.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git="${GIT_VERSION}" ca-certificates="${CA_CERTIFICATES_VERSION}" \
       bubblewrap="${BUBBLEWRAP_VERSION}" \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 app \
    && useradd --uid 1000 --gid 1000 --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && install -d -o 1000 -g 1000 -m 0700 /work \
    && find / -xdev -type f -perm /6000 -exec chmod a-s {} + \
    && test -z "$(find / -xdev -type f -perm /6000 -print -quit)"

COPY --from=python-deps /opt/venv /opt/venv
# The native CLI embeds Node, so the runtime needs no Node. Its pre-warmed cache is only read at run
# time (lock files it tries to write there are best-effort), so it stays root-owned and read-only.
COPY --from=copilot /opt/tools/node_modules/@github /app/node_modules/@github
COPY --from=copilot /opt/copilot-cache /opt/copilot-cache

WORKDIR /app
# The source, as filtered by .dockerignore; root-owned so the app user cannot change its own code.
COPY . .

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    XDG_CACHE_HOME=/opt/copilot-cache \
    WORK_DIR=/work

USER 1000:1000
EXPOSE 8000
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers"]

# syntax=docker/dockerfile:1.7
# gitlab-copilot-agent: one image, four commands.
#   API (default):      uvicorn api.app:create_app --factory --host 0.0.0.0 --port 8000
#   Worker:             python worker.py
#   Bootstrap (once):   python worker.py bootstrap
#   Agent Job runner:   python -m executors.job_runner
# Build: docker build -t gitlab-copilot-agent:dev .

ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm
ARG NODE_IMAGE=node:22.21.1-bookworm-slim

# --- Copilot CLI: pinned by package-lock.json, unpacked once so no pod pays the 235 MB first run ----------
FROM ${NODE_IMAGE} AS copilot
WORKDIR /opt/tools
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && test -x node_modules/@github/copilot-linux-x64/copilot
RUN XDG_CACHE_HOME=/opt/copilot-cache node_modules/@github/copilot-linux-x64/copilot --version \
    && test -d /opt/copilot-cache/copilot/pkg

# --- Python dependencies: exactly the pinned lock, no resolver at build time -------------------------------
FROM ${PYTHON_IMAGE} AS python-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock \
    && /opt/venv/bin/pip check

# --- Runtime ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# git clones and pushes MR branches; nothing else is added to the slim base. Then no setuid/setgid
# binaries are left, so nothing in the container can gain privileges.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 app \
    && useradd --uid 1000 --gid 1000 --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && install -d -o 1000 -g 1000 -m 0700 /work \
    && find / -xdev -type f -perm /6000 -exec chmod a-s {} + \
    && ! find / -xdev -type f -perm /6000 | grep -q .

COPY --from=python-deps /opt/venv /opt/venv
# The native CLI embeds Node, so the runtime needs no Node. Its pre-warmed cache is only read at run
# time (lock files it tries to write there are best-effort), so it stays root-owned and read-only.
COPY --from=copilot /opt/tools/node_modules/@github/copilot-linux-x64 /app/node_modules/@github/copilot-linux-x64
COPY --from=copilot /opt/copilot-cache /opt/copilot-cache

WORKDIR /app
# The source, as filtered by .dockerignore; root-owned so the app user cannot change its own code.
COPY . .

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    COPILOT_CLI_PATH=/app/node_modules/@github/copilot-linux-x64/copilot \
    COPILOT_CACHE_DIR=/opt/copilot-cache \
    WORK_DIR=/work

USER 1000:1000
EXPOSE 8000
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]

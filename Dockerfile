# syntax=docker/dockerfile:1
#
# One image per service, all from this file: `docker build --target intake -t send-intake .`
# Targets: intake, plans, reviews, placement, deadlines, notify.
#
# Each build stage installs exactly one workspace member's locked dependencies
# (`uv sync --frozen --no-dev --package <member>`) into /app/.venv, non-editable, so the
# virtual environment holds the service's code and nothing else of the repository. The
# runtime stages start again from the slim Python image and copy only that environment:
# no uv, no pip cache, no compilers, no source tree. Every runtime stage runs as the
# unprivileged user 10001 and starts Python directly (exec form), so SIGTERM reaches
# the process, whose own handlers (uvicorn's, faust's, the relay's) stop it cleanly.
#
# The Kubernetes manifests in deploy/ run the same images with a read-only root file
# system: anything a process writes goes to /tmp (an emptyDir) or a mounted volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------
# Build stages: dependencies first (cached while only source changes), then the code.

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m pip install uv==0.13.8
WORKDIR /src
# The workspace's lock and every member's pyproject: uv needs the whole workspace to
# check the lock, even when it installs one member.
COPY pyproject.toml uv.lock ./
COPY libs/sendkit/pyproject.toml libs/sendkit/
COPY schemas/pyproject.toml schemas/
COPY tools/devstack/pyproject.toml tools/devstack/
COPY services/intake/pyproject.toml services/intake/
COPY services/plans/pyproject.toml services/plans/
COPY services/reviews/pyproject.toml services/reviews/
COPY services/placement/pyproject.toml services/placement/
COPY services/deadlines/pyproject.toml services/deadlines/
COPY services/notify/pyproject.toml services/notify/

FROM build AS build-intake
RUN uv sync --frozen --no-dev --package send-intake --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/intake/ services/intake/
RUN uv sync --frozen --no-dev --package send-intake --no-editable

FROM build AS build-plans
RUN uv sync --frozen --no-dev --package send-plans --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/plans/ services/plans/
RUN uv sync --frozen --no-dev --package send-plans --no-editable

FROM build AS build-reviews
RUN uv sync --frozen --no-dev --package send-reviews --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/reviews/ services/reviews/
RUN uv sync --frozen --no-dev --package send-reviews --no-editable

FROM build AS build-placement
RUN uv sync --frozen --no-dev --package send-placement --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/placement/ services/placement/
RUN uv sync --frozen --no-dev --package send-placement --no-editable

FROM build AS build-deadlines
RUN uv sync --frozen --no-dev --package send-deadlines --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/deadlines/ services/deadlines/
RUN uv sync --frozen --no-dev --package send-deadlines --no-editable

FROM build AS build-notify
RUN uv sync --frozen --no-dev --package send-notify --no-install-workspace
COPY libs/sendkit/ libs/sendkit/
COPY schemas/ schemas/
COPY services/notify/ services/notify/
RUN uv sync --frozen --no-dev --package send-notify --no-editable

# ---------------------------------------------------------------------------------------
# The runtime base: the slim image, a user with no login and no home, nothing else.

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 send \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin send
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SEND_ENV=production \
    LOG_FORMAT=json
WORKDIR /app
LABEL org.opencontainers.image.source="send-casework" \
      org.opencontainers.image.description="SEND casework platform service"

# ---------------------------------------------------------------------------------------
# One target per service. Every image runs `python -m <module> [arguments]`: the default
# command is the service's main process, and the manifests name the module of each other
# process (the relay, the ticker, the read API) in `args`.

FROM runtime AS intake
COPY --from=build-intake /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8001
ENTRYPOINT ["python", "-m"]
CMD ["intake"]

FROM runtime AS plans
COPY --from=build-plans /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8002
ENTRYPOINT ["python", "-m"]
CMD ["plans"]

FROM runtime AS reviews
COPY --from=build-reviews /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8004
ENTRYPOINT ["python", "-m"]
CMD ["reviews"]

FROM runtime AS placement
COPY --from=build-placement /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8005
ENTRYPOINT ["python", "-m"]
CMD ["placement"]

FROM runtime AS deadlines
COPY --from=build-deadlines /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8003
ENTRYPOINT ["python", "-m"]
CMD ["deadlines", "worker"]

FROM runtime AS notify
COPY --from=build-notify /app/.venv /app/.venv
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["notify", "worker"]

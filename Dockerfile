# syntax=docker/dockerfile:1
# One image for both processes of Guest Journey:
#   API (default):  guest-journey api
#   worker:         python -m worker
# The production settings (API keys, secret key, PostgreSQL URL) come from the
# environment at run time; nothing secret is baked into the image.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/guest-journey
WORKDIR /src
# The runtime dependencies exactly as locked, every file checked against its hash
# (requirements/lock.sh); the Temporal binaries are a `dev` extra, not in this image.
COPY requirements ./requirements
RUN /opt/guest-journey/bin/pip install --no-cache-dir --require-hashes -r requirements/production.lock
COPY pyproject.toml README.md worker.py ./
COPY guest_journey ./guest_journey
COPY workflows ./workflows
COPY activities ./activities
COPY communications ./communications
COPY services ./services
COPY api ./api
COPY commands ./commands
RUN /opt/guest-journey/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/guest-journey/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GUEST_JOURNEY_DATA_DIR=/var/lib/guest-journey \
    GUEST_JOURNEY_API_HOST=0.0.0.0 \
    GUEST_JOURNEY_API_PORT=8000
RUN groupadd --system --gid 10001 guest-journey \
    && useradd --system --uid 10001 --gid guest-journey --no-create-home \
       --home-dir /var/lib/guest-journey --shell /usr/sbin/nologin guest-journey \
    && install -d -o guest-journey -g guest-journey -m 0700 /var/lib/guest-journey
COPY --from=build /opt/guest-journey /opt/guest-journey
WORKDIR /var/lib/guest-journey
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Liveness only (the process answers): an outage of the database or Temporal must not
# restart the API. Readiness, with its dependencies, is GET /health/ready.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('GUEST_JOURNEY_API_PORT', '8000'), timeout=4)"
CMD ["guest-journey", "api"]

# syntax=docker/dockerfile:1
# One image for the three processes; the command picks one:
#   docker run IMAGE gateway | rasa | actions      (deploy/entrypoint.py)
# Build:  make model && docker build -t county-eco-bot .
# (without `make model` the build trains the model itself: ~3 min, 1.5 GB RAM)
# docker-compose.yml and docs/deploy.md show how the processes fit together.

ARG PYTHON_IMAGE=python:3.10-slim-bookworm

# --- 1. the pinned dependency set (requirements.lock), in a venv we copy out ---
# Every compiled package in the lock has a manylinux wheel (the few sdists,
# jieba and docopt, are pure Python): no compiler, no apt-get.
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-deps -r /tmp/requirements.lock \
 && pip check

# --- 2. the trained model for exactly this data (fingerprint, scripts/model.py) ---
FROM deps AS model
WORKDIR /build
COPY config.yml domain.yml ./
COPY nlu_data/ nlu_data/
COPY nlu_ext/ nlu_ext/
COPY scripts/ scripts/
# models/ is not in git. The wildcard copies what `make model` left there, and
# nothing on a fresh clone (config.yml is listed so the COPY never matches nothing).
COPY config.yml models* models/
ENV PYTHONPATH=/build ECOBOT_MODEL_CACHE=/tmp/model-cache RASA_TELEMETRY_ENABLED=false
# Reuses models/model-<fingerprint>.tar.gz when it is there, trains otherwise.
# (rasa train prints to stdout: the path is the last line.)
RUN python -m scripts.model path > /tmp/model.out \
 && mkdir -p /out \
 && cp "$(tail -n 1 /tmp/model.out)" /out/ \
 && ls -l /out

# --- 3. runtime: non-root, read-only code, writable tmp/ and var/ only ---
FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
 && useradd --system --uid "${APP_UID}" --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/app/tmp \
    HOME=/home/app \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SPOOL_DIR=/app/var/spool \
    UPLOAD_DIR=/app/var/uploads
WORKDIR /app
# The code and data the processes read (owned by root: the app cannot change
# them). Not `COPY .`: models/ must hold only the model built for this data.
COPY actions/ actions/
COPY bot/ bot/
COPY core/ core/
COPY deploy/ deploy/
COPY knowledge/ knowledge/
COPY nlu_data/ nlu_data/
COPY nlu_ext/ nlu_ext/
COPY scripts/ scripts/
COPY config.yml domain.yml endpoints.yml credentials.yml requirements.lock Makefile README.md ./
COPY --from=model /out/ /app/models/
# Named volumes mounted on var/spool and var/uploads start with this ownership.
RUN mkdir -p /app/tmp /app/var/spool /app/var/uploads \
 && chown -R app:app /app/tmp /app/var \
 && chmod 0700 /app/var/spool
USER ${APP_UID}:${APP_UID}
# jieba's prefix-dictionary cache, written where TMPDIR points (see the script).
RUN python deploy/prepare_jieba.py
EXPOSE 8080 5005 5055
# The entrypoint records its process's health URL; Rasa needs ~1 min to load.
HEALTHCHECK --interval=15s --timeout=6s --start-period=180s --retries=3 \
  CMD ["python", "deploy/healthcheck.py"]
ENTRYPOINT ["python", "deploy/entrypoint.py"]
CMD ["gateway"]

# stream_am HTTP service. Not built in CI (no Docker engine there).
#   docker build -t stream-am .
#   docker run -p 8000:8000 -v stream-am-state:/data -e STREAM_AM_API_KEY=change-me stream-am
#   ... stream-am stream-am serve --predictors 2     (a writer and 2 predictor processes, docs/distributed.md)
#
# State on a bind mount instead of a named volume: the server runs as uid 10001, so the host directory must
# be writable by it, e.g.  mkdir -p state && sudo chown 10001 state && docker run -v "$PWD/state:/data" ...
# (a directory created by Docker for a missing bind-mount source belongs to root; the server then exits at
# once, saying that the state directory is not writable).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Every version pinned by constraints.txt (the versions the tests passed with), so that two builds of this
# file install the same packages. CPU-only torch comes from PyTorch's index: torch from PyPI is, on Linux,
# a CUDA build of several GB; the CPU index's build (2.13.0+cpu) satisfies the pin and is preferred.
COPY constraints.txt ./
RUN pip install -c constraints.txt torch --extra-index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY stream_am ./stream_am
COPY api ./api
COPY scenarios ./scenarios
RUN pip install -c constraints.txt ".[server]"

# Non-root user; the state (SQLite event logs and checkpoints) lives on a volume.
RUN useradd --create-home --uid 10001 stream && mkdir -p /data && chown stream:stream /data
USER stream
ENV STREAM_AM_STATE_DIR=/data \
    STREAM_AM_HOST=0.0.0.0 \
    STREAM_AM_PORT=8000
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('STREAM_AM_PORT', '8000'), timeout=4)"

# SIGTERM (docker stop) shuts down gracefully: in-flight requests finish, then every model is checkpointed.
CMD ["stream-am", "serve"]

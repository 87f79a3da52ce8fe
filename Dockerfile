# stream_am HTTP service. Not built or tested in CI: no Docker engine runs on our machines.
#   docker build -t stream-am .
#   docker run -p 8000:8000 -v stream-am-state:/data -e STREAM_AM_API_KEY=change-me stream-am
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# CPU-only torch first, from the PyTorch index: this is the user-facing way to get torch without the
# CUDA wheels (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY stream_am ./stream_am
COPY api ./api
COPY scenarios ./scenarios
RUN pip install ".[server]"

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

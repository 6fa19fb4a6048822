# smg: the gateway, plus the scripted test worker and the example MCP servers (same package).
#   docker build -t smg:local .
#   docker run --rm -p 30000:30000 -p 29000:29000 smg:local launch --worker-urls http://host:8000
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY smg ./smg
COPY mcp_servers ./mcp_servers
RUN pip install -c constraints.txt . && rm -rf /src

RUN useradd --create-home --uid 10001 smg \
    && mkdir -p /data /home/smg/.local/state \
    && chown -R smg:smg /data /home/smg
USER smg
WORKDIR /home/smg
ENV XDG_STATE_HOME=/home/smg/.local/state

# 30000: the gateway; 29000: Prometheus metrics (--prometheus-port).
EXPOSE 30000 29000
ENTRYPOINT ["smg"]
CMD ["launch", "--host", "0.0.0.0", "--prometheus-host", "0.0.0.0"]

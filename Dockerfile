# chatops-bot in a container: python:3.11-slim, the package and its dependencies installed from wheels,
# run as an unprivileged user. See docs/deploy.md.
#
#   docker build -t chatops-bot .
#   docker run -d --name chatops-bot -p 8080:8080 \
#     -v /etc/chatops-bot:/etc/chatops-bot:ro -v /var/lib/chatops-bot:/var/lib/chatops-bot:ro \
#     chatops-bot
#
# The config must set `server.listen: 0.0.0.0:8080` (the default, 127.0.0.1:8080, is unreachable from
# outside the container) and point `teleport.identity_file` into the mounted /var/lib/chatops-bot,
# which uid/gid 10001 (USER below) must be able to read: install -d -g 10001 -m 0750 /var/lib/chatops-bot

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY commands ./commands
COPY chatops_bot ./chatops_bot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHATOPS_BOT_HEALTHZ_URL=http://127.0.0.1:8080/healthz
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 chatops-bot \
 && useradd --system --uid 10001 --gid chatops-bot --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin chatops-bot
USER 10001:10001
EXPOSE 8080
# No curl in slim: Python's urllib asks /healthz; any error or non-2xx answer exits 1 (unhealthy).
# Set CHATOPS_BOT_HEALTHZ_URL when server.listen uses another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['CHATOPS_BOT_HEALTHZ_URL'], timeout=4)"]
ENTRYPOINT ["chatops-bot"]
CMD ["serve", "-c", "/etc/chatops-bot/config.yaml"]

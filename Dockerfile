# pbx-outreach: the daemon next to the PBX. Runtime dependencies only, pinned by requirements.lock.
#   docker build -t pbx-outreach .
#   docker run --network host -v /etc/pbx-outreach:/etc/pbx-outreach:ro \
#     -v pbx-outreach-data:/var/lib/pbx-outreach pbx-outreach
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY dialer ./dialer
COPY notifiers ./notifiers
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c requirements.lock .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pbx-outreach --create-home outreach
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PBX_OUTREACH_API_HOST=0.0.0.0
# The SQLite store and the SMS outbox file live here (point store.url and the outbox path at it).
VOLUME ["/var/lib/pbx-outreach"]
WORKDIR /var/lib/pbx-outreach
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# Exec form: SIGTERM reaches the daemon itself, which shuts down gracefully.
ENTRYPOINT ["dialer"]
CMD ["run", "--config", "/etc/pbx-outreach/config.yaml"]

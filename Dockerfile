# scayle-orderwise as a service: webhooks, health, metrics, the exceptions dashboard and the flow
# scheduler in one process (`scayle-orderwise serve`). See docs/deploying.md.
#
#   docker build -t scayle-orderwise .
#   docker run --env-file .env -v ./scayle-orderwise.toml:/etc/scayle-orderwise/scayle-orderwise.toml:ro \
#       -p 8080:8080 scayle-orderwise

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCAYLE_ORDERWISE_CONFIG=/etc/scayle-orderwise/scayle-orderwise.toml \
    SCAYLE_ORDERWISE_SERVICE__HOST=0.0.0.0 \
    SCAYLE_ORDERWISE_SERVICE__PORT=8080 \
    SCAYLE_ORDERWISE_SERVICE__REPORTS_DIR=/var/lib/scayle-orderwise/reports
COPY --from=build /wheels /wheels
# The wheel built above (never a same-named package from an index), with its extras.
RUN pip install --no-cache-dir "$(ls /wheels/scayle_orderwise-*.whl)[service,postgres]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/scayle-orderwise scayle
WORKDIR /var/lib/scayle-orderwise
USER scayle
EXPOSE 8080
# Liveness only: /readyz (flows stalled, ledger down) is for the load balancer or orchestrator.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# SIGTERM: stop taking work, finish or release the claims, exit 0 (give it the grace period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["scayle-orderwise"]
CMD ["--log-format", "json", "serve"]

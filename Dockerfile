# liqpolicy as an HTTP policy service: `liqpolicy serve` on port 8080.
#
#   docker build -t liqpolicy .
#   docker run --rm -p 8080:8080 liqpolicy
#   docker run --rm -p 8080:8080 -v "$PWD/my-policies:/policies:ro" -v "$PWD/logs:/logs" \
#       liqpolicy --policies /policies --decision-log /logs/decisions.jsonl --decision-log-required
#
# Two stages: the wheel is built from the sdist (as `.ci/run` builds it), then installed with the
# `server` extra into a slim image that runs as an unprivileged user.  Arguments after the image
# name are `liqpolicy serve` options.  docs/server.md ("Docker") describes it.

FROM python:3.12-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build==1.6.1 \
    && python -m build --outdir /dist .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/liqpolicy-*.whl)[server]" \
    && rm /tmp/*.whl \
    && useradd --system --uid 10001 --no-create-home liqpolicy \
    && mkdir /logs && chown liqpolicy /logs
USER liqpolicy
EXPOSE 8080
# Workers: evaluation is CPU-bound, about one per core; SIGTERM (docker stop) stops gracefully.
ENTRYPOINT ["liqpolicy", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--workers", "2"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

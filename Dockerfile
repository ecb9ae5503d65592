FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
# The sandbox's example GitOps repository (bot/sandbox/example links to it): `ferry sandbox` runs in the image.
COPY config ./config
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# `ferry serve` writes through GitHub's Git Data API: no git binary, no clone, nothing on disk. The root
# filesystem may be read-only (deploy/base does so): no bytecode is written, /tmp is the only scratch space.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 ferry && useradd --no-log-init --create-home --uid 10001 --gid 10001 ferry
COPY --from=build /install /usr/local
# Numeric, so Kubernetes can check runAsNonRoot without a runAsUser of its own.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["ferry"]
# 0.0.0.0: serve's default (127.0.0.1) would not be reachable from outside the container.
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

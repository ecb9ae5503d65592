FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# `ferry serve` writes through GitHub's Git Data API: no git binary, no clone, nothing on disk.
RUN useradd --create-home --uid 10001 ferry
COPY --from=build /install /usr/local
USER ferry
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["ferry"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

# The one image of kfp-rai: every pipeline component runs in it (and, later, the serving app).
# Tag it with the package version: `make image` does (see src/kfp_rai/_version.py).
#
# Stage 1 builds wheels for kfp-rai and every dependency, pinned by constraints.txt.
# Stage 2 installs only those wheels: no compiler, no pip cache, no source tree, non-root user.
# The base is pinned to an exact Python and Debian release (both stages use the same one).
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY components ./components
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11.14-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kfp-rai" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Responsible-AI components for Kubeflow Pipelines" \
      org.opencontainers.image.licenses="CC-BY-4.0 (bundled UCI Adult data)"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels "kfp-rai==${VERSION}" \
    && rm -rf /wheels \
    && groupadd --gid 10001 kfprai \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin kfprai
USER 10001:10001
WORKDIR /tmp
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["kfp-rai", "--help"]

# The one image of kfp-rai: every pipeline component and the model server run in it.
# Tag it with the package version: `make image` does (see src/kfp_rai/_version.py).
#
# BASE_IMAGE: the official image, pinned to an exact Python and Debian release (default), or a base
# built from Debian's packages where Docker Hub is out of reach (`scripts/base-image.sh`, then
# `make image BASE_IMAGE=<its last line>`, or `make image-debian`). Both stages use the same base.
# Stage 1 installs kfp-rai and every dependency, pinned by constraints.txt, into a venv at
# /opt/venv (Debian's python is /usr/bin/python3, the official image's /usr/local/bin/python3: a
# venv works on both), then removes what no task or server runs (tests, headers, stubs, sources).
# Stage 2 copies only that venv: no compiler, no pip, no pip cache, no source tree; non-root user
# 10001; runs with a read-only root file system (a writable /tmp) and without network.
# Builds on the legacy builder too (no BuildKit features): docker build --network host works.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
# checkov cannot resolve the argument; its default is an exact tag (tests/unit/test_deploy_files.py checks it).
# checkov:skip=CKV_DOCKER_7:FROM ${BASE_IMAGE}, whose default is the exact tag above, never latest

FROM ${BASE_IMAGE} AS build
# The package index as the host knows it (`make image` passes them; unset: pip's default index).
# Only this stage sees them: they are in no layer of the final image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# binutils for `strip` below (this stage only; the release is the base's own, hence no version pin).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
# pip, setuptools and wheel pinned (constraints.txt pins the package's own dependencies):
# Debian's pip 23.0 cannot build kfp-server-api's sdist (its only release form) without wheel.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir pip==26.3 setuptools==84.2.1 wheel==0.48.0
# Dependencies first (a layer that survives changes to the code), from pyproject.toml's list.
COPY pyproject.toml constraints.txt ./
RUN /opt/venv/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt -r requirements.txt
COPY README.md ./
COPY src ./src
COPY components ./components
COPY pipelines ./pipelines
ARG VERSION=0.1.0
# The package itself, at exactly the version the tag names; then every requirement must hold.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --find-links /wheels "kfp-rai==${VERSION}" \
    && /opt/venv/bin/pip check
# What no task or server runs (benchmarks/IMAGE.md has the sizes): test suites, C headers, Cython
# sources, type stubs; Arrow Flight (an RPC framework: pyarrow.flight, which nothing here imports);
# the symbol tables of compiled modules (strip --strip-unneeded; not the libraries auditwheel grafted
# into *.libs/, which patchelf rewrote); pip and wheel (setuptools stays: grpcio-tools, a kserve
# requirement, declares it).
RUN site=/opt/venv/lib/python3.11/site-packages \
    && find "$site" -depth -type d \( -name tests -o -name test \) -path "$site/*/*" -exec rm -rf {} + \
    && rm -rf "$site"/pyarrow/include "$site"/pyarrow/src "$site"/numpy/_core/include \
    && find "$site" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' -o -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' \) -delete \
    && rm -f "$site"/pyarrow/libarrow_flight.so* "$site"/pyarrow/libarrow_python_flight.so* "$site"/pyarrow/_flight.*.so \
    && find "$site" -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/pip uninstall --yes pip wheel \
    && rm -f /opt/venv/bin/activate* /opt/venv/bin/Activate.ps1 /opt/venv/bin/pip*
# The SBOM of exactly what the image holds (CycloneDX 1.5; scripts/sbom.py), inside the venv it lists.
COPY scripts/sbom.py /src/sbom.py
RUN /opt/venv/bin/python -I /src/sbom.py /opt/venv/share/kfp-rai/sbom.cdx.json "${VERSION}"

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kfp-rai" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Responsible-AI components for Kubeflow Pipelines" \
      org.opencontainers.image.licenses="CC-BY-4.0 (bundled UCI Adult data)" \
      io.kfp-rai.sbom="/opt/venv/share/kfp-rai/sbom.cdx.json"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
RUN groupadd --gid 10001 kfprai \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kfprai
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["kfp-rai", "--help"]
# Last, so a new commit rebuilds no layer: which source and which base the image was built from.
ARG REVISION=unknown
ARG BASE_IMAGE
LABEL org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

#!/usr/bin/env bash
# A Python base image built from Debian's own packages with debootstrap: no Docker Hub, no image
# registry, only a Debian mirror. `make image BASE_IMAGE=<the last line this prints>` builds the
# kfp-rai image on it (`make image-debian` does both).
#
#   Debian 12 "bookworm" (pinned: its python3 is 3.11, the official image's minor), variant
#   minbase, plus python3 and python3-venv (the Dockerfile makes a venv at /opt/venv on either
#   base). The host's CA bundle (CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt) is copied
#   in, so pip inside a build reaches the package index through a proxy the host trusts.
#
# The image's tag is a hash of what goes into it (this script, the CA bundle): an image with that
# tag is reused as it is, unless --rebuild. The root file system is kept as a tarball under
# ${KFP_RAI_CACHE_DIR:-.cache}/base-image/ (gitignored) and imported from there when the image is
# gone; --no-cache neither reads nor writes it. Progress goes to stderr; the LAST line on stdout
# is the image's reference. Needs root (debootstrap chroots), a running Docker engine, a mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

RELEASE=bookworm
VARIANT=minbase
PACKAGES=python3,python3-venv
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
REPOSITORY=${BASE_REPOSITORY:-kfp-rai-base}
CACHE_DIR=${KFP_RAI_CACHE_DIR:-.cache}/base-image
rebuild=0
use_cache=1
for arg in "$@"; do
  case $arg in
    --rebuild) rebuild=1 ;;
    --no-cache) use_cache=0 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base-image: unknown argument $arg (see $0 --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "base-image: $*" >&2; exit 2; }
say() { echo "base-image: $*" >&2; }

command -v docker >/dev/null || fail "docker is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || fail "no Docker engine is running (start dockerd, then run $0 again)"
[ -r "$CA_BUNDLE" ] || fail "CA bundle $CA_BUNDLE is not readable: set CA_BUNDLE to the host's PEM bundle"

hash=$( (cat "$0"; echo "$RELEASE $VARIANT $PACKAGES"; cat "$CA_BUNDLE") | sha256sum | cut -c1-12)
ref="$REPOSITORY:$RELEASE-$hash"

if [ "$rebuild" = 0 ] && docker image inspect "$ref" >/dev/null 2>&1; then
  say "$ref exists (same content hash): reusing it"
  echo "$ref"
  exit 0
fi

tarball="$CACHE_DIR/rootfs-$RELEASE-$hash.tar"
work=$(mktemp -d "${TMPDIR:-/tmp}/kfp-rai-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$use_cache" = 1 ] && [ "$rebuild" = 0 ] && [ -s "$tarball" ]; then
  say "importing the cached root file system $tarball"
else
  [ "$(id -u)" -eq 0 ] || fail "debootstrap needs root (it chroots): run it as root or with sudo"
  command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
  root="$work/rootfs"
  say "debootstrap --variant=$VARIANT $RELEASE from $MIRROR (a few minutes)"
  started=$(date +%s)
  debootstrap --variant="$VARIANT" --include="$PACKAGES" "$RELEASE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
  say "debootstrap took $(( $(date +%s) - started ))s"
  # Trust what the host trusts (a proxy's CA included); nothing of the host's besides.
  install -d -m 0755 "$root/etc/ssl/certs"
  install -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  install -d -m 0755 "$root/usr/lib/ssl"
  ln -sf /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"  # OpenSSL's default file
  # What an image does not need: package lists and archives, documentation, manuals, logs.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/* \
    "$root"/usr/share/locale/* "$root"/tmp/* "$root"/root/.cache
  printf 'deb %s %s main\n' "$MIRROR" "$RELEASE" >"$root/etc/apt/sources.list"
  python_version=$(chroot "$root" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
  [ "${python_version%.*}" = "3.11" ] || fail "$RELEASE's python3 is $python_version, not 3.11"
  echo "$python_version" >"$work/python-version"
  tar --numeric-owner -C "$root" --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$work/rootfs.tar" .
  if [ "$use_cache" = 1 ] && mkdir -p "$CACHE_DIR" 2>/dev/null; then
    rm -f "$CACHE_DIR"/rootfs-"$RELEASE"-*.tar "$CACHE_DIR"/rootfs-"$RELEASE"-*.tar.python-version  # older hashes
    cp "$work/rootfs.tar" "$tarball.tmp" && mv "$tarball.tmp" "$tarball" && say "cached the root file system in $tarball"
    cp "$work/python-version" "$tarball.python-version"
  fi
  tarball="$work/rootfs.tar"
fi

python_version=$(cat "$tarball.python-version" 2>/dev/null || cat "$work/python-version")
docker import \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
  --change "LABEL org.opencontainers.image.title=kfp-rai-base" \
  --change "LABEL org.opencontainers.image.description=\"Debian $RELEASE ($VARIANT) with python3 $python_version, built by scripts/base-image.sh\"" \
  --change 'CMD ["python3"]' \
  "$tarball" "$ref" >/dev/null
say "built $ref (python $python_version, $(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$ref"

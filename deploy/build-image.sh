#!/usr/bin/env bash
# Build the Tollgate image from this checkout. The project and its dependencies become
# wheels on this host first, so the image build fetches nothing from PyPI (only Debian's
# packages); then `podman build` (BUILDER=docker for Docker) with any arguments given:
#   deploy/build-image.sh -t tollgate:latest
#   deploy/build-image.sh -t tollgate --build-arg BASE=localhost/my-bookworm
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
pip=${PIP:-$root/.venv/bin/pip}
"$pip" wheel --quiet --no-deps --wheel-dir "$context/wheels" "$root"
# Debian bookworm's Python is 3.11.2, for which redis-py needs async-timeout as well.
"$pip" wheel --quiet --wheel-dir "$context/wheels" "$context"/wheels/tollgate-*.whl \
    'async-timeout>=4.0.3'
exec ${BUILDER:-podman} build --format docker -f "$root/deploy/Containerfile" "$@" "$context"

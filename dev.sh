#!/bin/sh
# The project's two everyday commands:
#   ./dev.sh run    install into .venv and start Tollgate with a demo (Ctrl-C stops it all)
#   ./dev.sh test   install what the tests need, then run every quality gate and the suite
# Set TOLLGATE_TEST_POSTGRES_URL to run the database tests on PostgreSQL as well.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    if is_root && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Debian packages: $*"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    else
        echo "Missing: $*. Install it with: sudo apt-get install $*" >&2
        exit 1
    fi
}

ensure_venv() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "Tollgate needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)." >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            apt_install python3-venv
        fi
        "$PYTHON" -m venv "$VENV"
    fi
    # run: Tollgate alone; test: with its development tools (a stamp for each)
    target=${1:-.}
    stamp="$VENV/.installed-$(echo "$target" | tr -c 'a-z' '_')"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        if [ "$target" = . ]; then
            echo "Installing Tollgate into $VENV ..."
        else
            echo "Installing Tollgate and its development tools into $VENV ..."
        fi
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e "$target"
        touch "$stamp"
    fi
}

pdf_libraries() {
    # Pango and fonts: WeasyPrint lays out the invoices' PDFs with them
    if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then
        apt_install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
    fi
}

ensure_test_services() {
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    # nginx with auth_request, for the reverse-proxy contract test
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx-light
    # curl: the end-to-end tests run the curl commands the banner prints, as a user would
    command -v curl >/dev/null 2>&1 || apt_install curl
    # jq: the README's examples use it, and a test runs them
    command -v jq >/dev/null 2>&1 || apt_install jq
    # chromium: the console's browser tests drive Debian's chromium with Playwright
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    # Caddy and HAProxy: the shipped configurations are tested live, like nginx's
    command -v caddy >/dev/null 2>&1 || apt_install caddy
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_install haproxy
    # podman, debootstrap and runc: the container image is built and run in a test
    command -v podman >/dev/null 2>&1 || apt_install podman
    command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || apt_install debootstrap
    command -v runc >/dev/null 2>&1 || apt_install runc
    pdf_libraries
}

case "${1:-}" in
    run)
        shift
        ensure_venv .
        pdf_libraries
        exec "$VENV/bin/tollgate" up "$@"
        ;;
    test)
        shift
        ensure_venv '.[dev]'
        # the Python client is a package of its own (clients/python); its tests need it
        "$VENV/bin/python" -c 'import tollgate_client' 2>/dev/null \
            || "$VENV/bin/python" -m pip install --quiet -e clients/python
        ensure_test_services
        echo "== ruff";          "$VENV/bin/ruff" check .
        echo "== ruff format";   "$VENV/bin/ruff" format --check .
        echo "== mypy";          "$VENV/bin/mypy"
        echo "== import-linter"; "$VENV/bin/lint-imports"
        # two processes (TOLLGATE_TEST_PROCESSES), each test file kept on one of them
        processes=${TOLLGATE_TEST_PROCESSES:-2}
        echo "== pytest (databases: sqlite${TOLLGATE_TEST_POSTGRES_URL:+, postgresql}; $processes processes)"
        exec "$VENV/bin/pytest" -n "$processes" --dist loadfile "$@"
        ;;
    *)
        echo "usage: ./dev.sh run [tollgate up options] | ./dev.sh test [pytest options]" >&2
        exit 2
        ;;
esac

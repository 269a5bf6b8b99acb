# Shared by scripts/run and scripts/test: a virtualenv with the project installed, and a
# redis-server when one is needed. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AISTATUS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

die() { echo "aistatus setup: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = "0" ]; }

apt_install() {
  # Debian/Ubuntu packages, only as root; otherwise say how, in one line.
  if is_root && command -v apt-get >/dev/null 2>&1; then
    echo "aistatus setup: installing $* with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    die "please install $* (Debian/Ubuntu: sudo apt-get install -y $*), then run this again"
  fi
}

ensure_python() {
  command -v "$PY" >/dev/null 2>&1 || die "python3 (3.11 or newer) is needed"
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed (found $("$PY" --version 2>&1))"
}

ensure_venv() {
  ensure_python
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install "python3-venv"
      "$PY" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.aistatus-installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] \
    || [ "$ROOT/requirements.lock" -nt "$stamp" ]; then
    echo "aistatus setup: installing the locked dependencies and the project into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    # Exactly the versions in requirements.lock, each checked against its hash (README
    # "Dependencies" says how to refresh it), then the project itself without resolving again.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
      -r "$ROOT/requirements.lock"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT"
    touch "$stamp"
  fi
}

ensure_redis_server() {
  command -v "${AISTATUS_REDIS_SERVER:-redis-server}" >/dev/null 2>&1 && return 0
  apt_install redis-server
}

ensure_chromium() {
  # The web board's browser test drives a real headless Chromium (Debian's `chromium` package).
  # Installed as root when missing; otherwise one line, and that test skips saying why.
  command -v chromium >/dev/null 2>&1 && return 0
  if is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install chromium || echo "aistatus setup: could not install chromium; the browser test will skip" >&2
  else
    echo "aistatus setup: chromium not found (Debian/Ubuntu: sudo apt-get install -y chromium); the browser test will skip" >&2
  fi
}

ensure_promtool() {
  # promtool (Debian's `prometheus` package) checks /metrics and unit-tests the alert rules in
  # manifests/prometheus/. Installed as root when missing; otherwise one line, and those tests skip.
  command -v promtool >/dev/null 2>&1 && return 0
  if is_root && command -v apt-get >/dev/null 2>&1; then
    echo "aistatus setup: installing promtool (Debian's prometheus package) with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || echo "aistatus setup: could not install promtool; the Prometheus tests will skip" >&2
  else
    echo "aistatus setup: promtool not found (Debian/Ubuntu: sudo apt-get install -y prometheus); the Prometheus tests will skip" >&2
  fi
}

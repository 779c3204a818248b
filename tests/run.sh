#!/usr/bin/env bash
# Runs every test of Parlor (unit, integration, and browser tests in headless
# Chromium), on a fresh machine too: it first installs what is missing.
#
# Run with: bash tests/run.sh     (from anywhere in the repository)
#   CHROMIUM_PATH=/path/to/chromium   the browser the tests drive (default: Debian's
#                                     /usr/bin/chromium, installed here when missing)
#
# What it installs when missing:
# - Debian's `chromium` package (as root, with apt-get), which the browser tests
#   drive through playwright-core: they never download a browser of their own,
#   and need no chromedriver.
# - Debian's `redis-server` package (as root, with apt-get), which the cluster tests
#   start themselves, each on a Unix socket of its own.
# - The browser tests' npm packages (`npm ci --prefix tests/e2e`), when
#   tests/e2e/node_modules is missing or older than tests/e2e/package-lock.json.
# What it cannot install (Rust, Node.js and npm, or chromium without root) it names,
# with how to get it, and exits 1 before running anything.
#
# Then it runs `cargo test --workspace` and `node --test tests/e2e/*.test.mjs`, and exits
# non-zero when either fails.
set -euo pipefail

E2E=tests/e2e
# The browser the tests launch: helpers.mjs reads the same variable and default.
DEBIAN_CHROMIUM=/usr/bin/chromium
CHROMIUM=${CHROMIUM_PATH:-$DEBIAN_CHROMIUM}
# Debian's redis-server, which tests/it/redis.rs starts.
REDIS_SERVER=redis-server
# What could not be had, one line each: "what: why, and how to get it".
MISSING=()
APT_UPDATED=

is_root() { [ "$(id -u)" -eq 0 ]; }

# Installs Debian packages without questions; `apt-get update` runs once.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A tool this script cannot install: note it when absent.
require_tool() { # name how-to-get-it
  command -v "$1" >/dev/null 2>&1 || MISSING+=("$1: not found; $2")
}

# Debian's chromium, installed when absent and we are root.
ensure_chromium() {
  if "$CHROMIUM" --version >/dev/null 2>&1; then
    return 0
  fi
  if [ "$CHROMIUM" != "$DEBIAN_CHROMIUM" ]; then
    MISSING+=("chromium: CHROMIUM_PATH=$CHROMIUM_PATH does not run; point it at a Chromium, or unset it to use Debian's /usr/bin/chromium")
    return 0
  fi
  if ! is_root; then
    MISSING+=("chromium: $CHROMIUM is missing and only root can install it; run: sudo apt-get update && sudo apt-get install --no-install-recommends chromium   (or set CHROMIUM_PATH to a Chromium)")
    return 0
  fi
  echo "--- installing Debian's chromium for the browser tests"
  if ! apt_install chromium; then
    MISSING+=("chromium: apt-get install chromium failed (see above); the browser tests need it at $CHROMIUM")
  elif ! "$CHROMIUM" --version >/dev/null 2>&1; then
    MISSING+=("chromium: installed, but $CHROMIUM --version fails")
  fi
}

# Debian's redis-server, installed when absent and we are root.
ensure_redis() {
  if command -v "$REDIS_SERVER" >/dev/null 2>&1; then
    return 0
  fi
  if ! is_root; then
    MISSING+=("redis-server: missing and only root can install it; run: sudo apt-get update && sudo apt-get install --no-install-recommends redis-server")
    return 0
  fi
  echo "--- installing Debian's redis-server for the cluster tests"
  if ! apt_install redis-server; then
    MISSING+=("redis-server: apt-get install redis-server failed (see above)")
  fi
  # The package starts a system Redis; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop redis-server >/dev/null 2>&1 || true
  fi
}

# Debian's nginx, which the TLS proxy test (tests/e2e/tls.test.mjs) starts
# in front of two nodes; that test is skipped, saying so, where nginx is not
# installed and cannot be.
ensure_nginx() {
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    return 0
  fi
  if ! is_root; then
    echo "--- nginx is not installed (sudo apt-get install nginx-light): the TLS proxy test will be skipped"
    return 0
  fi
  echo "--- installing Debian's nginx for the TLS proxy test"
  apt_install nginx-light openssl || echo "--- apt-get install nginx-light failed: the TLS proxy test will be skipped"
  # The package may start a system nginx; the test starts its own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop nginx >/dev/null 2>&1 || true
  fi
}

# The browser tests' npm packages, when absent or older than their lock file.
ensure_e2e_packages() {
  # npm writes node_modules/.package-lock.json at every install: its age is the install's.
  local installed=$E2E/node_modules/.package-lock.json
  if [ -f "$installed" ] && ! [ "$E2E/package-lock.json" -nt "$installed" ]; then
    return 0
  fi
  echo "--- npm ci --prefix $E2E"
  if ! npm ci --prefix "$E2E" --no-audit --no-fund; then
    MISSING+=("$E2E/node_modules: npm ci --prefix $E2E failed (see above)")
  fi
}

# Prints what is missing and exits 1, or returns when nothing is.
report_missing() {
  [ "${#MISSING[@]}" -eq 0 ] && return 0
  echo "tests/run.sh: cannot run the tests; missing:" >&2
  printf '  - %s\n' "${MISSING[@]}" >&2
  if command -v cargo >/dev/null 2>&1; then
    echo "(cargo test --workspace runs the Rust tests alone, without a browser.)" >&2
  fi
  exit 1
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  require_tool cargo "install Rust with rustup"
  require_tool node "install Node.js 20 or newer"
  require_tool npm "install npm (it comes with Node.js)"
  ensure_chromium
  ensure_redis
  ensure_nginx
  if command -v npm >/dev/null 2>&1; then
    ensure_e2e_packages
  fi
  report_missing
  echo "--- using $("$CHROMIUM" --version 2>/dev/null) at $CHROMIUM"
  echo "--- using $("$REDIS_SERVER" --version)"

  echo "--- cargo test --workspace"
  cargo test --workspace
  echo "--- node --test $E2E/*.test.mjs"
  node --test "$E2E"/*.test.mjs
}

# Sourcing the file (to exercise one function) runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi

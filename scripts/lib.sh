# Shared by scripts/start.sh and scripts/test.sh: get the tools a fresh Debian machine with
# only Node and npm lacks. Source it; it defines functions and changes nothing by itself.

PNPM_VERSION=10.34.9

say() { printf '\033[1mdtq:\033[0m %s\n' "$*" >&2; }

# Runs pnpm at the pinned version: a global one if it matches, else a local install of it.
pnpm_cmd() {
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
    pnpm "$@"
  else
    local bin=".tools/pnpm/node_modules/.bin/pnpm"
    if [ ! -x "$bin" ]; then
      say "installing pnpm $PNPM_VERSION into .tools/"
      npm install --silent --no-audit --no-fund --prefix .tools/pnpm "pnpm@$PNPM_VERSION" >&2
    fi
    "$bin" "$@"
  fi
}

can_sudo() { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

apt_install() {
  if command -v apt-get >/dev/null 2>&1 && can_sudo; then
    say "installing $* with apt-get"
    as_root apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
  else
    return 1
  fi
}

# Makes sure the redis-server binary exists (tests start private ones; dev may need one).
ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  apt_install redis-server && command -v redis-server >/dev/null 2>&1 && return 0
  say "redis-server is missing and could not be installed: run 'sudo apt-get install -y redis-server' (or set REDIS_URL)"
  return 1
}

install_deps() {
  pnpm_cmd install --frozen-lockfile --reporter=silent >&2 || pnpm_cmd install --reporter=silent >&2
}

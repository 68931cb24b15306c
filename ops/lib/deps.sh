# ops/lib/deps.sh — install the Debian packages a command needs (sourced, not run).
#
# usage: . ops/lib/deps.sh; deps_install build|db|test|browser|stack|bench|aws ...
#
# Idempotent: packages already installed are left alone, `apt-get update` runs at most once per
# shell and only when something is missing. Needs root (or sudo) only when something is missing.

# Package groups. Node.js is special: a machine may carry a newer node than Debian's (from another
# archive), so nodejs/npm are checked by command, not by package name (see _deps_missing).
_deps_group() {
    case "$1" in
    build) echo "cmake gcc make pkg-config libh2o-evloop-dev libluajit2-5.1-dev liblua5.4-dev lua5.4 libmariadb-dev libssl-dev zlib1g-dev libbrotli-dev libdeflate-dev lua-cjson lua-filesystem libjs-bootstrap5" ;;
    db) echo "mariadb-server mariadb-client" ;;
    test) echo "lua-busted lua-check nodejs npm curl wrk clang clang-format testssl.sh" ;;
    browser) echo "chromium" ;;
    stack) echo "nginx openssl iproute2 nftables curl testssl.sh" ;;
    bench) echo "nginx libnginx-mod-http-lua wrk curl" ;;
    aws) echo "awscli curl openssl shellcheck docker-registry" ;;
    *) return 1 ;;
    esac
}

# Prints the packages of the list that are not installed.
_deps_missing() {
    local pkg
    for pkg in "$@"; do
        case "$pkg" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
        nginx) [ -x /usr/sbin/nginx ] && continue ;; # nginx, nginx-light, nginx-core or nginx-full
        esac
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != "installed" ]; then
            echo "$pkg"
        fi
    done
}

_DEPS_APT_UPDATED=${_DEPS_APT_UPDATED:-0}

# deps_install GROUP... — installs whatever the groups need and is missing. Returns non-zero with a
# message naming the missing packages when apt-get fails.
deps_install() {
    local group pkgs="" missing sudo=""
    for group in "$@"; do
        if ! pkgs="$pkgs $(_deps_group "$group")"; then
            echo "deps_install: unknown group '$group' (build, db, test, browser, stack, bench, aws)" >&2
            return 2
        fi
    done
    # shellcheck disable=SC2086
    missing=$(_deps_missing $pkgs | tr '\n' ' ')
    missing=${missing% }
    [ -z "$missing" ] && return 0

    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "missing packages: $missing — run as root: apt-get install -y $missing" >&2
            return 1
        fi
    fi
    echo "installing: $missing" >&2
    local log
    log=$(mktemp)
    if [ "$_DEPS_APT_UPDATED" != 1 ]; then
        if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            echo "apt-get update failed; still missing: $missing" >&2
            return 1
        fi
        _DEPS_APT_UPDATED=1
    fi
    # shellcheck disable=SC2086
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        echo "apt-get install failed; still missing: $missing" >&2
        return 1
    fi
    rm -f "$log"
    # shellcheck disable=SC2086
    missing=$(_deps_missing $missing | tr '\n' ' ')
    if [ -n "${missing% }" ]; then
        echo "still missing after apt-get install: $missing" >&2
        return 1
    fi
}

#!/usr/bin/env bash
# usage: spec/support/mariadb.sh start DIR PORT [--tls CERTDIR] | stop DIR | kill DIR
#   start  creates a private MariaDB in DIR (data in DIR/data) unless there is one, starts it on
#          127.0.0.1:PORT and DIR/mysqld.sock, waits until it answers and creates the database
#          `flaskcrud` and the user h2lua / h2lua-test-pw (from 127.0.0.1 and localhost) with all
#          privileges on flaskcrud and flaskcrud_* databases. Does nothing when it already runs.
#          --tls: TLS with CERTDIR/ca.pem, server-cert.pem, server-key.pem and
#          require_secure_transport=ON (TCP clients must use TLS; the unix socket stays open).
#   stop   SIGTERM by DIR/mysqld.pid, then SIGKILL after 20 s.
#   kill   SIGKILL at once (fault tests); `start` again recovers the same data.
# Prints nothing but errors. The server's log is DIR/error.log.
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }

DB_NAME=flaskcrud
DB_USER=h2lua
DB_PASSWORD=h2lua-test-pw

die() {
    echo "mariadb.sh: $*" >&2
    exit 1
}

# Prints the pid of the server running for DIR, or fails.
running_pid() {
    local pidfile="$1/mysqld.pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/comm" ] || return 1
    case "$(cat "/proc/$pid/comm")" in
    mariadbd | mysqld) echo "$pid" ;;
    *) return 1 ;;
    esac
}

ping_db() {
    mariadb-admin --no-defaults --protocol=socket --socket="$1/mysqld.sock" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1
}

log_tail() {
    if [ -f "$1/error.log" ]; then
        echo "--- last lines of $1/error.log:" >&2
        tail -n 25 "$1/error.log" >&2
    fi
}

cmd_start() {
    local dir="$1" port="$2" certs="${3:-}" tls=() f
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    if [ -n "$certs" ]; then
        for f in ca.pem server-cert.pem server-key.pem; do
            [ -r "$certs/$f" ] || die "--tls: $certs/$f is missing"
        done
        certs=$(cd "$certs" && pwd)
        tls=(--ssl-ca="$certs/ca.pem" --ssl-cert="$certs/server-cert.pem" --ssl-key="$certs/server-key.pem"
            --require-secure-transport=ON)
    fi
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] ||
        die "mariadbd is not installed (apt-get install -y mariadb-server mariadb-client)"
    export PATH="$PATH:/usr/sbin"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ${#dir} -gt 90 ]; then
        die "DIR is too long for a unix socket path: $dir"
    fi

    if ! running_pid "$dir" >/dev/null; then
        # its own tmpdir: a starting mariadbd deletes the #sql temp files it finds in its tmpdir, and
        # mariadb-install-db's bootstrap fails when another instance does that in a shared /tmp
        mkdir -p "$dir/tmp"
        if [ ! -d "$dir/data/mysql" ]; then
            rm -rf "$dir/data"
            mkdir -p "$dir/data"
            if ! mariadb-install-db --no-defaults --user=root --datadir="$dir/data" --tmpdir="$dir/tmp" \
                --auth-root-authentication-method=normal --skip-test-db \
                >"$dir/install.log" 2>&1; then
                grep -m 10 -i -E 'error|fail' "$dir/install.log" >&2 || true
                tail -n 25 "$dir/install.log" >&2
                die "mariadb-install-db failed in $dir/data"
            fi
        fi
        rm -f "$dir/mysqld.pid" "$dir/mysqld.sock"
        mkdir -p "$dir/tmp"
        setsid mariadbd --no-defaults --user=root \
            --datadir="$dir/data" --tmpdir="$dir/tmp" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
            --port="$port" --bind-address=127.0.0.1 --log-error="$dir/error.log" \
            --skip-name-resolve --innodb-buffer-pool-size=256M --max-connections=500 \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci "${tls[@]}" \
            </dev/null >/dev/null 2>&1 &
        local child=$! waited=0
        disown "$child" 2>/dev/null || true
        until ping_db "$dir"; do
            if ! kill -0 "$child" 2>/dev/null; then
                log_tail "$dir"
                die "mariadbd exited while starting (port $port, dir $dir)"
            fi
            if [ "$waited" -ge 300 ]; then
                log_tail "$dir"
                kill -KILL "$child" 2>/dev/null || true
                die "mariadbd did not answer within 30 s (port $port, dir $dir)"
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
    fi

    mariadb --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot <<SQL || die "could not create the database and user"
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1', '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`${DB_NAME}\\_%\`.* TO '$DB_USER'@'127.0.0.1', '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

cmd_stop() {
    local dir="$1" sig="$2" pid i
    pid=$(running_pid "$dir") || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "mariadb.sh: mariadbd $pid did not stop within 20 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    [ "$sig" = KILL ] && rm -f "$dir/mysqld.pid"
    return 0
}

case "${1:-}" in
start)
    if [ $# -eq 5 ] && [ "$4" = --tls ]; then
        cmd_start "$2" "$3" "$5"
    else
        [ $# -eq 3 ] || { usage >&2; exit 2; }
        cmd_start "$2" "$3"
    fi
    ;;
stop)
    [ $# -eq 2 ] || { usage >&2; exit 2; }
    cmd_stop "$2" TERM
    ;;
kill)
    [ $# -eq 2 ] || { usage >&2; exit 2; }
    cmd_stop "$2" KILL
    ;;
-h | --help)
    usage
    ;;
*)
    usage >&2
    exit 2
    ;;
esac

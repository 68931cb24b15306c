# ops/lib/private_app.sh — the entries app on a private MariaDB, for ops scripts that measure it
# (ops/soak, ops/valgrind). Source it from the repository root after ops/lib/ports.sh; it defines:
#
#   private_db_start DIR NAME   starts MariaDB (spec/support/mariadb.sh) with its data in DIR on a
#                               free port and creates database NAME (utf8mb4); sets DB_PORT and
#                               DATABASE_URL (the harness's h2lua user). Stop it with
#                               `spec/support/mariadb.sh kill DIR`.
#   private_app_env             prints the environment every private run shares (one NAME=value a
#                               line): PATH, HOME, LANG, HOST, the app's directories, DATABASE_URL
#   wait_ready URL PID LOG TRIES DELAY
#                               polls URL until it answers 200, TRIES times DELAY seconds apart;
#                               returns 1 (after printing LOG) when PID exits first or time runs out.

private_db_start() {
    local dir=$1 name=$2
    DB_PORT=$(free_port)
    spec/support/mariadb.sh start "$dir" "$DB_PORT"
    mariadb --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot \
        -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4"
    DATABASE_URL="mysql://h2lua:h2lua-test-pw@127.0.0.1:$DB_PORT/$name"
}

private_app_env() {
    local root; root=$(pwd)
    printf '%s\n' "PATH=$PATH" "HOME=${HOME:-/root}" LANG=C.UTF-8 HOST=127.0.0.1 \
        "VIEWS_DIR=$root/views" "MIGRATIONS_DIR=$root/db/migrations" "DATABASE_URL=$DATABASE_URL"
}

wait_ready() {
    local url=$1 pid=$2 log=$3 tries=$4 delay=$5
    for _ in $(seq 1 "$tries"); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$url")" = 200 ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            return 1
        fi
        sleep "$delay"
    done
    echo "not ready after $tries tries: $url" >&2
    return 1
}

#!/bin/sh
# usage: db-entrypoint.sh [MARIADBD-OPTION...]
#   The entrypoint of the Dockerfile's db stage (Debian 12's MariaDB 10.11, for the development
#   stack of image/compose.yaml). On an empty /var/lib/mysql it creates the system tables, the
#   database $MARIADB_DATABASE and the user $MARIADB_USER (password $MARIADB_PASSWORD, every
#   privilege on that database, from any host); root logs in by socket only. Then it runs mariadbd
#   as PID 1 on port 3306 of every interface, with the given options. The variables are those of the
#   upstream mariadb image, so the two are interchangeable in compose.yaml.
set -eu

datadir=/var/lib/mysql
db=${MARIADB_DATABASE:-}
user=${MARIADB_USER:-}
pw=${MARIADB_PASSWORD:-}

mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$datadir"

if [ ! -d "$datadir/mysql" ]; then
    if [ -n "$user" ] && [ -z "$pw" ]; then
        echo "db-entrypoint: MARIADB_USER is set without MARIADB_PASSWORD" >&2
        exit 2
    fi
    echo "db-entrypoint: initialising $datadir" >&2
    mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=socket \
        --skip-test-db >/dev/null
    # SQL string literals: a quote is doubled, a backslash too
    q() { printf "%s" "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g"; }
    # --bootstrap starts without the grant tables; FLUSH PRIVILEGES loads them for CREATE USER
    {
        echo "FLUSH PRIVILEGES;"
        if [ -n "$db" ]; then
            printf 'CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n' "$db"
        fi
        if [ -n "$user" ]; then
            printf "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\n" "$(q "$user")" "$(q "$pw")"
            if [ -n "$db" ]; then
                printf "GRANT ALL ON \`%s\`.* TO '%s'@'%%';\n" "$db" "$(q "$user")"
            fi
        fi
    } | mariadbd --user=mysql --datadir="$datadir" --bootstrap --skip-networking || {
        echo "db-entrypoint: initialising $datadir failed; emptied it for the next start" >&2
        rm -rf "${datadir:?}"/*
        exit 1
    }
fi

exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 \
    --skip-name-resolve "$@"

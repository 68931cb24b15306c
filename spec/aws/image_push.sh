#!/usr/bin/env bash
# usage: spec/aws/image_push.sh
#   The image push path of ops/aws/deploy, without AWS: Debian's docker-registry on 127.0.0.1 (a free
#   port, a private storage directory) stands for ECR. `deploy --push-only --repository
#   127.0.0.1:PORT/h2lua` puts an RDS CA bundle into the context, builds image/Dockerfile with buildah
#   (on ops/image's storage and local base image) and pushes it. The image is then pulled back with
#   podman into an empty storage of its own and run against a private MariaDB: /readyz 200, an entry
#   added and listed, the CA bundle at DATABASE_CA's path. Prints "ok - ..." / "not ok - ..." and
#   ends with `N passed, N failed`. Needs root (buildah, podman, runc, docker-registry, MariaDB).
set -euo pipefail

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }
case "${1:-}" in
"") ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../.."

. ops/lib/deps.sh
deps_install db aws >/dev/null
ops/image base >/dev/null

tmp=$(mktemp -d /tmp/h2lua-aws-push.XXXXXX)
tag=push-$$-$RANDOM
name=h2lua-aws-push-$$
passed=0
failed=0
registry_pid=''
pull=(env H2LUA_CONTAINERS="$tmp/pulled" H2LUA_CONTAINERS_RUN="$tmp/pulled-run" ops/image)

# shellcheck disable=SC2317  # run by the trap
cleanup() {
    "${pull[@]}" podman rm -f "$name" >/dev/null 2>&1 || true
    # the build's tag in ops/image's storage (its layers stay, as the cache)
    [ -z "${repository:-}" ] || ops/image podman rmi "$repository:$tag" >/dev/null 2>&1 || true
    if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
    spec/support/mariadb.sh stop "$tmp/db" || true
    # the pulled storage holds overlay mounts only while a container runs; it is plain files now
    rm -rf "$tmp" 2>/dev/null || true
}
trap cleanup EXIT

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true; }
wait_status() { # URL CODE SECONDS
    local deadline=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(status "$1")" = "$2" ] && return 0
        sleep 0.5
    done
    return 1
}

# --- the registry ---------------------------------------------------------------------------------
port=$(free_port)
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
if wait_status "http://127.0.0.1:$port/v2/" 200 30; then
    ok "docker-registry answers on 127.0.0.1:$port"
else
    not_ok "docker-registry answers on 127.0.0.1:$port"
    sed 's/^/# /' "$tmp/registry.log"
    finish
fi

# --- deploy's build and push ----------------------------------------------------------------------
# buildah on ops/image's storage, where the local base image and the layer cache are.
cache=${H2LUA_CONTAINERS:-/var/tmp/h2lua-containers}
run=${H2LUA_CONTAINERS_RUN:-/run/h2lua-containers}
case "$(stat -f -c %T "$cache" 2>/dev/null)" in
overlayfs | tmpfs) driver=vfs ;;
*) driver=overlay ;;
esac
printf -- '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n' >"$tmp/rds-ca.pem"
repository=127.0.0.1:$port/h2lua
if H2LUA_BUILDAH_OPTS="--root $cache/storage --runroot $run/storage --storage-driver $driver" \
    ops/aws/deploy --push-only --repository "$repository" --tag "$tag" --builder buildah \
    --build-arg BASE=localhost/debian-base:bookworm --rds-ca "$tmp/rds-ca.pem" >"$tmp/push.log" 2>&1; then
    ok "deploy --push-only builds and pushes $repository:$tag"
else
    not_ok "deploy --push-only builds and pushes $repository:$tag"
    tail -n 30 "$tmp/push.log" | sed 's/^/# /'
    finish
fi
tags=$(curl -s -m 5 "http://127.0.0.1:$port/v2/h2lua/tags/list" || true)
if grep -qF "\"$tag\"" <<<"$tags"; then ok "the registry lists the tag ($tags)"; else not_ok "the registry lists the tag ($tags)"; fi

# --- pulled back into an empty storage, run against MariaDB ---------------------------------------
if "${pull[@]}" podman pull --tls-verify=false "$repository:$tag" >"$tmp/pull.log" 2>&1; then
    ok "podman pulls $repository:$tag into an empty storage"
else
    not_ok "podman pulls $repository:$tag into an empty storage"
    tail -n 20 "$tmp/pull.log" | sed 's/^/# /'
    finish
fi
bundle=$("${pull[@]}" run --rm --entrypoint /bin/cat "$repository:$tag" \
    /usr/local/share/h2lua/rds-ca/global-bundle.pem 2>/dev/null || true)
if grep -q MIIBtest <<<"$bundle"; then
    ok "the image has the RDS CA bundle at DATABASE_CA's path"
else
    not_ok "the image has the RDS CA bundle at DATABASE_CA's path"
fi

db_port=$(free_port)
spec/support/mariadb.sh start "$tmp/db" "$db_port" || { not_ok "MariaDB starts"; finish; }
app_port=$(free_port)
url=http://127.0.0.1:$app_port
if ! "${pull[@]}" run -d --name "$name" -e PORT="$app_port" -e SECRET_KEY=aws-push-secret-key-0123456789abcdef \
    -e DATABASE_URL="mysql://h2lua:h2lua-test-pw@127.0.0.1:$db_port/flaskcrud" "$repository:$tag" >"$tmp/run.log" 2>&1; then
    not_ok "the pulled image starts"
    sed 's/^/# /' "$tmp/run.log"
    finish
fi
if wait_status "$url/readyz" 200 60; then ok "GET /readyz is 200"; else not_ok "GET /readyz is 200"; fi

jar=$tmp/cookies
title="pushed image $$ $RANDOM"
curl -s -m 5 -c "$jar" -o "$tmp/index.html" "$url/" || true
token=$(grep -o '<input[^>]*name="csrf_token"[^>]*>' "$tmp/index.html" | head -n 1 |
    sed -n 's/.*value="\([^"]*\)".*/\1/p' || true)
code=$(curl -s -m 5 -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "title=$title" \
    --data-urlencode "description=added by spec/aws/image_push.sh" --data-urlencode "csrf_token=$token" \
    "$url/add" || true)
if [ "$code" = 303 ] && curl -s -m 5 -b "$jar" "$url/" | grep -qF "$title"; then
    ok "an entry is added (POST /add 303) and listed (GET /)"
else
    not_ok "an entry is added (POST /add $code) and listed (GET /)"
    "${pull[@]}" podman logs "$name" 2>&1 | tail -n 10 | sed 's/^/# /'
fi
finish

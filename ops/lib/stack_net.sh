# shellcheck shell=bash
# ops/lib/stack_net.sh — the network of `ops/stack up --isolated` (sourced, not run).
#
# usage: . ops/lib/stack_net.sh; NET_PREFIX=h2lua; net_up; net_down; net_exists
#
# Five network namespaces, named $NET_PREFIX-<name>, joined only to each other:
#
#   client  10.200.1.10        "the internet": a browser, curl
#   public  10.200.2.10        the front (nginx)                 ~ the ALB in the public subnets
#   app     10.200.3.11, .12…  one address per app server        ~ the ECS tasks' ENIs
#   db      10.200.4.11 (primary), 10.200.4.12 (replica)         ~ the RDS instances
#   vpc     10.200.N.1         a router between the four subnets ~ the VPC's implicit router
#
# Each tier namespace has one veth pair to the vpc namespace (the whole pair lives in namespaces:
# nothing is created in the host's namespace) and one route, 10.200.0.0/16 via its router: there
# is no default route, so nothing can reach any address outside 10.200.0.0/16. IPv6 is off.
#
# nftables in each tier namespace mirrors the AWS security groups (stateful, inbound only, policy
# drop; outbound is open as in a security group):
#   public  tcp 80, 443 from anywhere                 ~ the ALB security group
#   app     tcp APP_PORT from the public subnet       ~ the tasks' group: the app port from the ALB's
#   db      tcp 3306 from the app subnet              ~ the database group: 3306 from the tasks'
#   client  nothing
# The router forwards between the subnets (no filter, like the VPC router) and admits nothing itself.
# Traffic between the primary and the replica stays inside the db namespace (loopback).

NET_PREFIX=${NET_PREFIX:-h2lua}
NET_TIERS=(client public app db)
NET_APP_PORT=8080
NET_DB_PORT=3306
NET_FRONT_ADDR=10.200.2.10
NET_CLIENT_ADDR=10.200.1.10
NET_PRIMARY_ADDR=10.200.4.11
NET_REPLICA_ADDR=10.200.4.12

# net_ns TIER — the namespace's name.
net_ns() { echo "$NET_PREFIX-$1"; }

# net_app_addr I — the address of app server I (1-based).
net_app_addr() { echo "10.200.3.$((10 + $1))"; }

_net_subnet() { # tier -> third octet
    case "$1" in
    client) echo 1 ;;
    public) echo 2 ;;
    app) echo 3 ;;
    db) echo 4 ;;
    esac
}

# The addresses of a tier (apps: as many as given).
_net_addrs() { # tier [apps]
    case "$1" in
    client) echo "$NET_CLIENT_ADDR" ;;
    public) echo "$NET_FRONT_ADDR" ;;
    app)
        local i
        for ((i = 1; i <= ${2:-2}; i++)); do net_app_addr "$i"; done
        ;;
    db) echo "$NET_PRIMARY_ADDR $NET_REPLICA_ADDR" ;;
    esac
}

# The inbound rules of a tier, after the common ones (the security group's ingress).
_net_rules() {
    case "$1" in
    public) echo "tcp dport { 80, 443 } accept comment \"public: HTTP and HTTPS from anywhere\"" ;;
    app) echo "ip saddr 10.200.2.0/24 tcp dport $NET_APP_PORT accept comment \"app: the app port from the front\"" ;;
    db) echo "ip saddr 10.200.3.0/24 tcp dport $NET_DB_PORT accept comment \"db: 3306 from the app servers\"" ;;
    client) echo "# client: nothing inward" ;;
    router) echo "# router: forwards between the tiers, nothing inward" ;;
    esac
}

_net_ruleset() { # tier
    cat <<NFT
table inet h2lua_sg {}
delete table inet h2lua_sg
table inet h2lua_sg {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iif lo accept
        $(_net_rules "$1")
    }
}
NFT
}


# net_exists — true when any namespace of this prefix exists.
net_exists() {
    local t
    for t in vpc "${NET_TIERS[@]}"; do
        [ -e "/run/netns/$(net_ns "$t")" ] && return 0
    done
    return 1
}

# net_up [APPS] — creates (or completes) the namespaces, links, addresses, routes and rules.
# Idempotent; the rules are replaced atomically. Returns non-zero with a message on failure.
net_up() {
    local apps=${1:-2} vpc t ns n addr
    command -v nft >/dev/null 2>&1 || { echo "stack: nft is missing (apt-get install -y nftables)" >&2; return 1; }
    vpc=$(net_ns vpc)
    for t in vpc "${NET_TIERS[@]}"; do
        ns=$(net_ns "$t")
        [ -e "/run/netns/$ns" ] || ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip netns exec "$vpc" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$vpc" nft -f - <<<"$(_net_ruleset router)"
    for t in "${NET_TIERS[@]}"; do
        ns=$(net_ns "$t")
        n=$(_net_subnet "$t")
        if ! ip -n "$vpc" link show "to-$t" >/dev/null 2>&1; then
            ip -n "$vpc" link add "to-$t" type veth peer name eth0 netns "$ns"
        fi
        ip -n "$vpc" addr replace "10.200.$n.1/24" dev "to-$t"
        ip -n "$vpc" link set "to-$t" up
        for addr in $(_net_addrs "$t" "$apps"); do
            ip -n "$ns" addr replace "$addr/24" dev eth0
        done
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route replace 10.200.0.0/16 via "10.200.$n.1" dev eth0
        ip netns exec "$ns" nft -f - <<<"$(_net_ruleset "$t")"
    done
}

# net_down — deletes the namespaces (and with them the links and rules). Processes must be gone.
net_down() {
    local t ns
    for t in "${NET_TIERS[@]}" vpc; do
        ns=$(net_ns "$t")
        if [ -e "/run/netns/$ns" ]; then
            ip netns delete "$ns"
        fi
    done
}

# net_pids — pids of processes still running in the namespaces (none after a clean stop).
net_pids() {
    local t ns
    for t in "${NET_TIERS[@]}" vpc; do
        ns=$(net_ns "$t")
        [ -e "/run/netns/$ns" ] && ip netns pids "$ns" 2>/dev/null
    done
    return 0
}

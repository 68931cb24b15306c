# ops/lib/ports.sh — free TCP ports on 127.0.0.1, for scripts that start private servers.
# Source it (`. ops/lib/ports.sh`); it defines:
#   free_port      prints one port nothing listens on (the kernel's choice)
#   free_ports N   prints the first of N consecutive free ports (for a stack that numbers its parts)
# A port is free when it is printed; another process may take it before it is bound.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(500):
    base = random.randint(30000, 39000)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit(1)
PY
}

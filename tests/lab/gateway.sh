#!/usr/bin/env bash
# A gateway between the lab's client and server: three network namespaces, for the
# inline proxy's end-to-end test and benchmark. Sourced; sources lab.sh.
#
#   client ns ftpw-pc        gateway ns ftpw-pg                 server ns ftpw-ps
#   10.78.2.2 / fd78:2::2 -- 10.78.2.1 / fd78:2::1 | 10.78.1.2 / fd78:1::2 -- 10.78.1.1 / fd78:1::1
#        pwc0 ------------------ pgc0                 pgs0 ------------------ pws0
#
# The client's routes to the server's network go through the gateway, which forwards
# (transparent mode intercepts there). Traffic stays inside these namespaces.

LAB_S=${LAB_S:-ftpw-ps}
LAB_C=${LAB_C:-ftpw-pc}
LAB_G=${LAB_G:-ftpw-pg}
LAB_DIR=${LAB_DIR:-/tmp/ftplab-proxy}
# shellcheck source=lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
SRV4=10.78.1.1; SRV6=fd78:1::1
GWS4=10.78.1.2; GWS6=fd78:1::2
GWC4=10.78.2.1; GWC6=fd78:2::1
CLI4=10.78.2.2; CLI6=fd78:2::2
in_g() { ip netns exec "$LAB_G" "$@"; }

gateway_down() {
    local ns pids
    lab_stop_server
    for ns in "$LAB_C" "$LAB_G"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -n "$pids" ] && kill $pids 2>/dev/null || true
    done
    sleep 0.3
    for ns in "$LAB_C" "$LAB_G" "$LAB_S"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}
gateway_up() {
    gateway_down
    ip netns add "$LAB_S"; ip netns add "$LAB_G"; ip netns add "$LAB_C"
    ip link add pws0 netns "$LAB_S" type veth peer name pgs0 netns "$LAB_G"
    ip link add pgc0 netns "$LAB_G" type veth peer name pwc0 netns "$LAB_C"
    in_s ip addr add "$SRV4/24" dev pws0; in_s ip -6 addr add "$SRV6/64" dev pws0 nodad
    in_g ip addr add "$GWS4/24" dev pgs0; in_g ip -6 addr add "$GWS6/64" dev pgs0 nodad
    in_g ip addr add "$GWC4/24" dev pgc0; in_g ip -6 addr add "$GWC6/64" dev pgc0 nodad
    in_c ip addr add "$CLI4/24" dev pwc0; in_c ip -6 addr add "$CLI6/64" dev pwc0 nodad
    for ns in "$LAB_S" "$LAB_G" "$LAB_C"; do ip netns exec "$ns" ip link set lo up; done
    in_s ip link set pws0 up; in_g ip link set pgs0 up; in_g ip link set pgc0 up; in_c ip link set pwc0 up
    for x in "in_s pws0" "in_g pgs0" "in_g pgc0" "in_c pwc0"; do
        set -- $x; $1 ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true
    done
    # The client reaches the server's network only through the gateway (transparent mode).
    in_c ip route add 10.78.1.0/24 via "$GWC4"
    in_c ip -6 route add fd78:1::/64 via "$GWC6"
    in_s ip route add 10.78.2.0/24 via "$GWS4"
    in_s ip -6 route add fd78:2::/64 via "$GWS6"
    in_g sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    mkdir -p "$LAB_DIR"
    [ -s "$LAB_DIR/up.bin" ] || head -c 49152 /dev/urandom > "$LAB_DIR/up.bin"
}


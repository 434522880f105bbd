#!/usr/bin/env bash
# Peer FTP proxies for benchmarks: two other relaying FTP proxies from Debian, started
# in a network namespace in the foreground of a background job, PID recorded, each
# relaying every client to one upstream FTP server. Sourced (needs root).
#
#   peers_install                                                   (idempotent)
#   peer_start_ftp_proxy NETNS LISTEN_ADDR LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT WORKDIR
#   peer_stop_ftp_proxy
#   peer_start_mod_proxy NETNS LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT WORKDIR
#   peer_stop_mod_proxy
#
# Both peers take the upstream's own user name and password unchanged (plain
# "USER ftplab"), so a client URL is ftp://USER:PASS@LISTEN_ADDR:LISTEN_PORT/path.
# Each start function prints that URL form on stdout when the peer is ready.
#
# Data connections: both peers relay passive (PASV) transfers through themselves.
#   ftp-proxy 1.9.2.4 does not know EPSV/EPRT: it answers "500 'EPSV': command unrecognized."
#     to EPSV and curl falls back to PASV (lftp likewise).
#   mod_proxy supports EPSV from the client (229) and here always uses PASV to the
#     upstream (ProxyDataTransferPolicy PASV).

LAB_ROOT=${LAB_ROOT:-/opt/ftplab/root}   # proftpd-core (and now mod_proxy) unpacked here
PEER_USER=${PEER_USER:-ftplab}           # unprivileged user the peers switch to

# Installs Debian's ftp-proxy (SuSE proxy-suite) with apt, without starting its
# packaged service, and unpacks proftpd-mod-proxy into $LAB_ROOT beside proftpd-core
# (which lab.sh's lab_install unpacks; done here too when missing), checking that
# both come from the same proftpd source version.
peers_install() {
    if ! dpkg -s ftp-proxy >/dev/null 2>&1 || ! dpkg -s libsqlite3-0 >/dev/null 2>&1 ||
       ! dpkg -s libsodium23 >/dev/null 2>&1; then
        local had_policy=0
        [ -e /usr/sbin/policy-rc.d ] && had_policy=1
        if [ $had_policy = 0 ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            ftp-proxy libsqlite3-0 libsodium23 >/dev/null
        [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
    fi
    # (The package's own service is also off by default: /etc/default/ftp-proxy has
    # RUN_DAEMON=no. Only the instances started below ever run.)
    if [ ! -x "$LAB_ROOT/usr/sbin/proftpd" ] || [ ! -f "$LAB_ROOT/usr/lib/proftpd/mod_proxy.so" ] ||
       [ ! -f "$LAB_ROOT/usr/lib/proftpd/mod_tls.so" ]; then
        local dl; dl=$(mktemp -d)
        local pkgs=(proftpd-mod-proxy)
        # mod_proxy.so needs mod_tls.so (proftpd-mod-crypto) loaded before it.
        [ -x "$LAB_ROOT/usr/sbin/proftpd" ] || pkgs+=(proftpd-core)
        [ -f "$LAB_ROOT/usr/lib/proftpd/mod_tls.so" ] || pkgs+=(proftpd-mod-crypto)
        (cd "$dl" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1) || {
            apt-get update -qq
            (cd "$dl" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1)
        }
        mkdir -p "$LAB_ROOT"
        local d
        for d in "$dl"/*.deb; do dpkg -x "$d" "$LAB_ROOT"; done
        rm -rf "$dl"
    fi
    # Version check: mod_proxy's package depends on proftpd-abi-X.Y.Z; the unpacked
    # core's changelog names its version.
    local core_ver abi
    core_ver=$(zcat "$LAB_ROOT/usr/share/doc/proftpd-core/changelog.Debian.gz" 2>/dev/null |
               sed -n '1s/.*(\([0-9.]*\).*/\1/p')
    abi=$(apt-cache show proftpd-mod-proxy 2>/dev/null | sed -n 's/.*proftpd-abi-\([0-9.]*\).*/\1/p' | head -1)
    if [ -n "$abi" ] && [ -n "$core_ver" ] && [ "$abi" != "$core_ver" ]; then
        echo "peers: proftpd-mod-proxy wants proftpd $abi but $LAB_ROOT has $core_ver" >&2
        return 1
    fi
    id "$PEER_USER" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin "$PEER_USER"
}

# Waits until ADDR:PORT in NETNS greets with 220 (at most about 10 s).
_peer_wait_greeting() {
    local ns=$1 addr=$2 port=$3 pid=$4 deadline=$((SECONDS + 10)) line
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        line=$(ip netns exec "$ns" timeout 2 bash -c \
            "exec 3<>/dev/tcp/$addr/$port && read -r -t 1 l <&3 && echo \"\$l\"" 2>/dev/null)
        case "$line" in 220*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# Waits until something listens on TCP PORT in NETNS, while PID lives (about 10 s).
# Used for mod_proxy: a greeting probe would make it open an upstream session.
_peer_wait_listen() {
    local ns=$1 port=$2 pid=$3 deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# Kills the process recorded in PIDFILE and its forked per-session children (both
# daemons also end their children on SIGTERM; leftovers are killed by pid).
_peer_kill() {
    local pidfile=$1 pid kids i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" $kids 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# SuSE proxy-suite ftp-proxy 1.9.2.4 (Debian package ftp-proxy), standalone, not
# detached (-d -n), one forked child per client. Every client goes to
# UPSTREAM_IP:UPSTREAM_PORT (DestinationAddress/DestinationPort; AllowMagicUser off,
# so "user@host" is NOT interpreted: log in with the upstream's plain user name).
# The proxy keeps the client's data mode (DestinationTransferMode client): PASV from
# the client is PASV to the upstream. No EPSV/EPRT: curl falls back to PASV.
# Config: WORKDIR/ftp-proxy.conf; PID: WORKDIR/ftp-proxy.pid; log WORKDIR/log/ftp-proxy.log.
peer_start_ftp_proxy() {
    local ns=$1 laddr=$2 lport=$3 uip=$4 uport=$5 wd=$6
    if [ $# -ne 6 ]; then
        echo "usage: peer_start_ftp_proxy NETNS LISTEN_ADDR LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT WORKDIR" >&2
        return 2
    fi
    mkdir -p "$wd"
    PEER_FTP_PROXY_PIDFILE="$wd/ftp-proxy.pid"
    _peer_kill "$PEER_FTP_PROXY_PIDFILE"
    # ftp-proxy opens (removes and recreates) its log after switching to User, so the
    # log lives in a directory that user owns.
    mkdir -p "$wd/log"; chown "$PEER_USER" "$wd/log"; rm -f "$wd/log/ftp-proxy.log"
    cat > "$wd/ftp-proxy.conf" <<CONF
[-Global-]
ServerType              standalone
Listen                  $laddr
Port                    $lport
DestinationAddress      $uip
DestinationPort         $uport
DestinationTransferMode client
AllowMagicUser          no
AllowTransProxy         no
SameAddress             yes
User                    $PEER_USER
Group                   $PEER_USER
MaxClients              512
ForkLimit               100000
TimeOut                 120
LogDestination          $wd/log/ftp-proxy.log
LogLevel                WRN
CONF
    # -d: standalone even if the file said inetd; -n: stay in the foreground.
    ip netns exec "$ns" /usr/sbin/ftp-proxy -d -n -f "$wd/ftp-proxy.conf" \
        </dev/null >"$wd/ftp-proxy.out" 2>&1 &
    local pid=$!
    echo "$pid" > "$PEER_FTP_PROXY_PIDFILE"
    if ! _peer_wait_greeting "$ns" "$laddr" "$lport" "$pid"; then
        echo "peers: ftp-proxy did not start (see $wd/ftp-proxy.out, $wd/log/ftp-proxy.log)" >&2
        _peer_kill "$PEER_FTP_PROXY_PIDFILE"
        return 1
    fi
    echo "ftp://USER:PASS@$laddr:$lport/   (plain upstream user; no EPSV, PASV only)"
}

# peer_stop_ftp_proxy [WORKDIR]: without WORKDIR, the one last started in this shell.
peer_stop_ftp_proxy() {
    if [ -n "${1:-}" ]; then _peer_kill "$1/ftp-proxy.pid"
    else _peer_kill "${PEER_FTP_PROXY_PIDFILE:-/nonexistent}"; fi
}

# ProFTPD 1.3.8 + mod_proxy (Debian proftpd-mod-proxy 0.9.2-1+deb12u1, which logs
# itself as mod_proxy/0.9.3; unpacked into $LAB_ROOT)
# as a reverse proxy: every client goes to ftp://UPSTREAM_IP:UPSTREAM_PORT. User
# authentication is delegated to the upstream (no UseReverseProxyAuth), so clients log
# in with the upstream's plain user name and password (no user@host form).
# Listens on all addresses of NETNS at LISTEN_PORT (the PASV address it answers is
# the address the client connected to). Clients may use EPSV or PASV; to the upstream
# it always uses PASV (ProxyDataTransferPolicy PASV), and every data connection is
# relayed through the proxy. Runs as root (needed for its chroot into ProxyTables after
# login) and switches to $PEER_USER. Harmless per-session line in proftpd.log:
# "mod_cap/1.1: setreuid(1001, 0) failed" (mod_proxy has dropped root for good).
# Files in WORKDIR: mod_proxy.conf, mod_proxy.pid, proxy.log, proftpd.log, tables/.
peer_start_mod_proxy() {
    local ns=$1 lport=$2 uip=$3 uport=$4 wd=$5
    if [ $# -ne 5 ]; then
        echo "usage: peer_start_mod_proxy NETNS LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT WORKDIR" >&2
        return 2
    fi
    mkdir -p "$wd/tables"
    PEER_MOD_PROXY_PIDFILE="$wd/mod_proxy.pid"
    _peer_kill "$PEER_MOD_PROXY_PIDFILE"
    # mod_proxy rebuilds its tables at start; a stale set from an old run is removed.
    rm -rf "${wd:?}/tables"; mkdir -p "$wd/tables"
    rm -f "$wd/proxy.log" "$wd/proftpd.log"
    # The ProxyTables directory must not be group/world writable (proftpd refuses it).
    chmod 0755 "$wd/tables"
    # mod_proxy binds its backend connections to the server's own address, which is
    # the resolution of the host name (127.0.0.1 here: connect() then fails with EINVAL).
    # ProxySourceAddress is set to the source address NETNS routes UPSTREAM_IP from.
    local src
    src=$(ip netns exec "$ns" ip -o route get "$uip" 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p')
    if [ -z "$src" ]; then
        echo "peers: no route from $ns to $uip" >&2
        return 1
    fi
    cat > "$wd/mod_proxy.conf" <<CONF
ServerName "mod_proxy peer"
ServerType standalone
DefaultServer on
Port $lport
UseIPv6 off
User $PEER_USER
Group $PEER_USER
MaxInstances 1000
UseReverseDNS off
WtmpLog off
ScoreboardFile $wd/proftpd.scoreboard
PidFile $wd/proftpd.pid
DelayTable none
SystemLog $wd/proftpd.log
TimeoutIdle 120

ModulePath $LAB_ROOT/usr/lib/proftpd
# mod_proxy.so uses libssl symbols without linking libssl itself (Debian builds it
# against mod_tls): mod_tls.so (proftpd-mod-crypto) must be loaded first. TLS stays off.
LoadModule mod_tls.c
LoadModule mod_proxy.c

<IfModule mod_proxy.c>
  ProxyEngine on
  ProxyLog $wd/proxy.log
  ProxyTables $wd/tables
  ProxyRole reverse
  ProxyReverseConnectPolicy RoundRobin
  ProxyReverseServers ftp://$uip:$uport
  ProxySourceAddress $src
  ProxyDataTransferPolicy PASV
  ProxyOptions ShowFeatures
  ProxyTimeoutConnect 5
</IfModule>
CONF
    ip netns exec "$ns" "$LAB_ROOT/usr/sbin/proftpd" -n -q -c "$wd/mod_proxy.conf" \
        </dev/null >"$wd/proftpd.out" 2>&1 &
    local pid=$!
    echo "$pid" > "$PEER_MOD_PROXY_PIDFILE"
    if ! _peer_wait_listen "$ns" "$lport" "$pid"; then
        echo "peers: proftpd mod_proxy did not start (see $wd/proftpd.out, $wd/proftpd.log)" >&2
        _peer_kill "$PEER_MOD_PROXY_PIDFILE"
        return 1
    fi
    echo "ftp://USER:PASS@<any address of $ns>:$lport/   (plain upstream user; EPSV and PASV)"
}

# peer_stop_mod_proxy [WORKDIR]: without WORKDIR, the one last started in this shell.
peer_stop_mod_proxy() {
    if [ -n "${1:-}" ]; then _peer_kill "$1/mod_proxy.pid"
    else _peer_kill "${PEER_MOD_PROXY_PIDFILE:-/nonexistent}"; fi
}

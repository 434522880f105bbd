#!/usr/bin/env bash
# The FTP test lab: two network namespaces joined by a veth pair, real FTP servers
# from Debian in one, real clients in the other. Sourced by record.sh (captures
# committed under tests/data/) and by the live end-to-end test.
#
# Addresses: server 10.77.0.1 / fd77::1 (namespace ftpw-s, interface fws0),
#            client 10.77.0.2 / fd77::2 (namespace ftpw-c, interface fwc0).
# Traffic stays inside these namespaces.

LAB_S=${LAB_S:-ftpw-s}
LAB_C=${LAB_C:-ftpw-c}
LAB_DIR=${LAB_DIR:-/tmp/ftplab}
LAB_ROOT=${LAB_ROOT:-/opt/ftplab/root}   # proftpd and pure-ftpd unpacked here
# The servers' passive ports (a benchmark with hundreds of sessions widens them).
LAB_PASV_MIN=${LAB_PASV_MIN:-40000}
LAB_PASV_MAX=${LAB_PASV_MAX:-40100}
LAB_USER=ftplab
LAB_PASS=labpass
SRV4=10.77.0.1
CLI4=10.77.0.2
SRV6=fd77::1
CLI6=fd77::2

in_s() { ip netns exec "$LAB_S" "$@"; }
in_c() { ip netns exec "$LAB_C" "$@"; }

# Debian packages the lab needs. Every Debian FTP server conflicts with the others
# (Provides/Conflicts: ftp-server), so vsftpd is installed and the other two are
# unpacked under $LAB_ROOT. A policy-rc.d keeps packaged services from starting.
lab_install() {
    local need=()
    # openssl and libsodium23: the TLS variant of proftpd (mod_tls from
    # proftpd-mod-crypto, and a self-signed certificate made at run time).
    for p in vsftpd lftp curl tcpdump iproute2 ethtool iptables python3 openssl \
             libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libsodium23; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        local had_policy=0
        [ -e /usr/sbin/policy-rc.d ] && had_policy=1
        [ $had_policy = 1 ] || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
    fi
    # proftpd-mod-crypto carries mod_tls.so (ProFTPD's FTPS, with CCC). It is unpacked
    # together with proftpd-core so that module and core are of the same version.
    if [ ! -x "$LAB_ROOT/usr/sbin/proftpd" ] || [ ! -x "$LAB_ROOT/usr/sbin/pure-ftpd" ] ||
       [ ! -f "$LAB_ROOT/usr/lib/proftpd/mod_tls.so" ]; then
        local dl; dl=$(mktemp -d)
        (cd "$dl" && apt-get download -qq proftpd-core proftpd-mod-crypto pure-ftpd >/dev/null 2>&1)
        mkdir -p "$LAB_ROOT"
        for d in "$dl"/*.deb; do dpkg -x "$d" "$LAB_ROOT"; done
        rm -rf "$dl"
    fi
    id "$LAB_USER" >/dev/null 2>&1 || useradd -M -d /srv/ftplab -s /bin/bash "$LAB_USER"
    echo "$LAB_USER:$LAB_PASS" | chpasswd
    mkdir -p /srv/ftplab/upload /var/run/vsftpd/empty
    [ -f /srv/ftplab/small.bin ] || head -c 65536 /dev/urandom > /srv/ftplab/small.bin
    [ -f /srv/ftplab/big.bin ] || truncate -s 64M /srv/ftplab/big.bin
    chown -R "$LAB_USER:$LAB_USER" /srv/ftplab
}

lab_up() {
    lab_down
    ip netns add "$LAB_S"
    ip netns add "$LAB_C"
    ip link add fws0 netns "$LAB_S" type veth peer name fwc0 netns "$LAB_C"
    in_s ip addr add "$SRV4/24" dev fws0
    in_c ip addr add "$CLI4/24" dev fwc0
    in_s ip -6 addr add "$SRV6/64" dev fws0 nodad
    in_c ip -6 addr add "$CLI6/64" dev fwc0 nodad
    for ns in "$LAB_S" "$LAB_C"; do
        ip netns exec "$ns" ip link set lo up
    done
    in_s ip link set fws0 up
    in_c ip link set fwc0 up
    # Wire-sized segments in the capture, not 64 KiB offload aggregates.
    in_s ethtool -K fws0 tso off gso off gro off >/dev/null 2>&1 || true
    in_c ethtool -K fwc0 tso off gso off gro off >/dev/null 2>&1 || true
    # Small client receive windows: a transfer the client abandons leaves little on
    # the wire, so the recorded captures stay small. (Namespace-local sysctl.)
    in_c sysctl -qw net.ipv4.tcp_rmem="4096 16384 32768"
    mkdir -p "$LAB_DIR"
    # The file every client uploads (STOR), made here so that every user of the lab has it.
    [ -s "$LAB_DIR/up.bin" ] || head -c 49152 /dev/urandom > "$LAB_DIR/up.bin"
}

lab_down() {
    lab_stop_server
    local pids
    pids=$(ip netns pids "$LAB_C" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
    ip netns del "$LAB_S" 2>/dev/null || true
    ip netns del "$LAB_C" 2>/dev/null || true
}

# A self-signed certificate for the TLS variant, made at run time in $LAB_DIR (a key is
# never committed). Kept across runs of the lab; remade when missing.
lab_tls_cert() {
    [ -s "$LAB_DIR/tls.key" ] && [ -s "$LAB_DIR/tls.crt" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ftpwatch lab" \
        -keyout "$LAB_DIR/tls.key" -out "$LAB_DIR/tls.crt" 2>/dev/null
    chmod 600 "$LAB_DIR/tls.key"
}

# Start one server in the server namespace, in the foreground of a background job.
# Servers: vsftpd, proftpd, pure-ftpd, and two variants used by one capture each:
#   vsftpd-async-abor  vsftpd with async_abor_enable=YES: it reads the control connection
#                      on SIGURG during a transfer (this is where it answers 500 to an
#                      urgent ABOR without the Telnet IP/Synch bytes, as ftplib sends it)
#   proftpd-tls        proftpd with mod_tls (explicit FTPS: AUTH TLS, PROT C/P, CCC)
#   vsftpd-tls         vsftpd with ssl_enable=YES (explicit FTPS, no CCC: the control
#                      connection stays encrypted); TLS optional for login and data,
#                      data connections must reuse the control connection's TLS session
# The plain configurations are the ones every other capture was recorded with.
lab_start_server() {
    local name=$1
    lab_stop_server   # one server at a time on port 21
    mkdir -p "$LAB_DIR"
    case "$name" in
    vsftpd|vsftpd-async-abor|vsftpd-tls)
        cat > "$LAB_DIR/$name.conf" <<CONF
listen=NO
listen_ipv6=YES
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_root=/srv/ftplab
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
pasv_min_port=$LAB_PASV_MIN
pasv_max_port=$LAB_PASV_MAX
connect_from_port_20=YES
data_connection_timeout=8
xferlog_enable=NO
CONF
        [ "$name" != vsftpd-async-abor ] || echo "async_abor_enable=YES" >> "$LAB_DIR/$name.conf"
        if [ "$name" = vsftpd-tls ]; then
            lab_tls_cert
            # ssl_ciphers=HIGH: vsftpd's default list (DES-CBC3-SHA) leaves OpenSSL 3
            # nothing to offer in TLS 1.2.
            cat >> "$LAB_DIR/$name.conf" <<CONF
ssl_enable=YES
rsa_cert_file=$LAB_DIR/tls.crt
rsa_private_key_file=$LAB_DIR/tls.key
require_ssl_reuse=YES
force_local_logins_ssl=NO
force_local_data_ssl=NO
ssl_ciphers=HIGH
CONF
        fi
        # Extra settings (the benchmark lifts the per-address session limit).
        [ -z "${LAB_VSFTPD_EXTRA:-}" ] || printf '%b\n' "$LAB_VSFTPD_EXTRA" >> "$LAB_DIR/$name.conf"
        in_s vsftpd "$LAB_DIR/$name.conf" &
        ;;
    proftpd|proftpd-tls)
        cat > "$LAB_DIR/$name.conf" <<CONF
ServerName "ftpwatch lab"
ServerType standalone
DefaultServer on
Port 21
UseIPv6 on
User $LAB_USER
Group $LAB_USER
DefaultRoot ~
RequireValidShell off
AuthOrder mod_auth_unix.c
PassivePorts $LAB_PASV_MIN $LAB_PASV_MAX
AllowOverwrite on
TimeoutStalled 8
UseReverseDNS off
WtmpLog off
ScoreboardFile $LAB_DIR/proftpd.scoreboard
PidFile $LAB_DIR/proftpd.pid
DelayTable none
CONF
        if [ "$name" = proftpd-tls ]; then
            lab_tls_cert
            # mod_tls comes from proftpd-mod-crypto, unpacked beside proftpd-core.
            # TLSRequired off: with TLS required on the control connection mod_tls
            # answers CCC with 534; "off" also leaves PROT C (clear data) to the client.
            # (A PROT P data connection after CCC works without NoSessionReuseRequired:
            # it gets a full handshake.)
            cat >> "$LAB_DIR/$name.conf" <<CONF
ModulePath $LAB_ROOT/usr/lib/proftpd
LoadModule mod_tls.c
TLSEngine on
TLSLog $LAB_DIR/proftpd-tls.log
TLSProtocol TLSv1.2 TLSv1.3
TLSRSACertificateFile $LAB_DIR/tls.crt
TLSRSACertificateKeyFile $LAB_DIR/tls.key
TLSVerifyClient off
TLSRequired off
CONF
        fi
        in_s "$LAB_ROOT/usr/sbin/proftpd" -n -q -c "$LAB_DIR/$name.conf" &
        ;;
    pure-ftpd)
        in_s "$LAB_ROOT/usr/sbin/pure-ftpd" -l unix -E -A -p "$LAB_PASV_MIN:$LAB_PASV_MAX" -H &
        ;;
    *) echo "lab: unknown server $name" >&2; return 1 ;;
    esac
    echo $! > "$LAB_DIR/server.pid"
    # Ready when port 21 accepts connections and greets (at most about 10 s). Waiting
    # for the greeting keeps this probe's own 220 out of a capture started right after:
    # proftpd with mod_tls greets some 60 ms after the connection is accepted.
    local deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        if in_c timeout 2 bash -c "exec 3<>/dev/tcp/$SRV4/21 && read -r -t 1 greeting <&3" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "lab: $name did not start" >&2
    return 1
}

lab_stop_server() {
    # Every process in the server namespace is a server of ours (servers rename their
    # processes, so killing by name is unreliable).
    local pids
    pids=$(ip netns pids "$LAB_S" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
    for _ in $(seq 1 50); do
        [ -z "$(ip netns pids "$LAB_S" 2>/dev/null)" ] && break
        sleep 0.1
    done
    pids=$(ip netns pids "$LAB_S" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    rm -f "$LAB_DIR/server.pid"
}

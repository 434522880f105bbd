#!/usr/bin/env bash
# End-to-end test of the shipped systemd files under a real systemd (run as root; .ci/run
# runs it). systemd 252 from Debian 12 boots as PID 1 of a fresh PID, mount, UTS, IPC and
# cgroup namespace, chrooted into a minimal Debian tree, inside the lab's client network
# namespace. The tree is built once with debootstrap and cached (read-only: each run
# writes to its own overlay). The built binary and systemd/ftpwatch.service,
# ftpwatch.env and ftpwatch.logrotate are installed unchanged, apart from the interface
# (the lab's veth) and the metrics port in the environment file. Real FTP traffic: the
# lab's vsftpd in its server namespace, curl in the client namespace, which is where the
# unit captures.
#
# Checked for ftpwatch.service: it starts and stays active as its dynamic user with only
# CAP_NET_RAW + CAP_NET_ADMIN effective; /metrics is served and counts the transfers;
# the event log is /var/log/ftpwatch/events.jsonl, mode 0640; `systemctl reload` reopens
# it without a restart; logrotate (Debian's logrotate.service, then `logrotate -f`)
# rotates it and ftpwatch writes on to the new file; `systemctl stop` takes under 3 s;
# a SIGKILLed main process is restarted after RestartSec.
# systemd/ftpwatch-proxy.service, when present, gets the same checks (check_unit,
# check_event_log with downloads through the proxy, check_stop, check_crash_restart),
# with the lab's server as its upstream; skipped when the file does not exist.
#
# Usage: tests/e2e/systemd.sh [path/to/ftpwatch]
# Environment:
#   FTPWATCH_UNIT_FILE   a unit file to install instead of systemd/ftpwatch.service (to
#                        check that this test fails, e.g. without CAP_NET_RAW)
#   FTPWATCH_SYSTEMD_TREE  the cached tree (default /var/lib/machines/ftpwatch-bookworm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN_SRC=${1:-$root/target/debug/ftpwatch}
UNIT_FILE=${FTPWATCH_UNIT_FILE:-$root/systemd/ftpwatch.service}
TREE=${FTPWATCH_SYSTEMD_TREE:-/var/lib/machines/ftpwatch-bookworm}
TREE_PACKAGES=systemd,systemd-sysv,dbus,procps,curl,logrotate

work=$(mktemp -d /tmp/ftpwatch-systemd.XXXXXX)
# Lab namespaces and files of our own (tests/e2e/live.sh uses ftpw-s/ftpw-c): addresses
# are per namespace, so the lab's fixed addresses do not collide.
export LAB_S=ftpw-ys LAB_C=ftpw-yc LAB_DIR=$work/lab
# shellcheck source=../lab/lab.sh
. "$root/tests/lab/lab.sh"
PORT=10436                 # metrics, inside $LAB_C (live.sh: 10426/10427/19090)
IFACE=fwc0                 # the lab client's veth, in $LAB_C
CG=ftpwatch-e2e-systemd-$$ # our cgroup in every hierarchy, parent of systemd's own
BOOT_PID='' SYSD=''

log() { echo "systemd-e2e: $*"; }
sd() { # run a command inside the booted tree (its PID and mount namespace, its root)
    nsenter -t "$SYSD" -p -m -r -w env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
sd_alive() { [ -n "$SYSD" ] && kill -0 "$SYSD" 2>/dev/null; }
fail() {
    echo "systemd-e2e: FAIL: $*" >&2
    if sd_alive; then
        for u in ${UNITS_CHECKED:-ftpwatch}; do
            echo "--- systemctl status $u:" >&2; sd systemctl status --no-pager -l "$u" >&2 || true
            echo "--- journalctl -u $u:" >&2; sd journalctl --no-pager -n 60 -u "$u" >&2 || true
        done
        echo "--- failed units:" >&2; sd systemctl --failed --no-pager >&2 || true
    fi
    exit 1
}
wait_until() { # seconds, description, command...
    local limit=$1 what=$2; shift 2
    for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
    fail "timed out after ${limit}s waiting for $what"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cleanup() {
    local rc=$?
    set +e
    if sd_alive; then
        # A clean shutdown inside, then SIGKILL of PID 1 (which takes every process of
        # the namespace with it) if it is not gone within 10 s.
        sd systemctl poweroff --no-block >/dev/null 2>&1
        for _ in $(seq 1 100); do kill -0 "$SYSD" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SYSD" 2>/dev/null && { echo "systemd-e2e: systemd did not power off; SIGKILL" >&2; kill -KILL "$SYSD"; }
    fi
    if [ -n "$BOOT_PID" ]; then
        for _ in $(seq 1 50); do kill -0 "$BOOT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BOOT_PID" 2>/dev/null
        wait "$BOOT_PID" 2>/dev/null
    fi
    lab_down
    # The mounts (overlay, proc, sys, dev, run, cgroup) lived in the booted mount
    # namespace only and went with it; our cgroups are left, empty.
    local h
    for h in /sys/fs/cgroup/*/; do
        find "$h" -depth -type d -path "*/$CG*" -exec rmdir {} + 2>/dev/null
    done
    if find /sys/fs/cgroup -path "*/$CG*" -print -quit 2>/dev/null | grep -q .; then
        echo "systemd-e2e: WARNING: cgroups left under /sys/fs/cgroup/*/$CG" >&2
    fi
    if grep -q "$work" /proc/self/mountinfo; then
        echo "systemd-e2e: WARNING: mounts left under $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT

# --- the cached Debian tree --------------------------------------------------------
ensure_tree() {
    mkdir -p "$(dirname "$TREE")"
    exec 9>"$TREE.lock"
    flock -w 900 9 || fail "another run has been building $TREE for 15 minutes"
    if [ ! -x "$TREE/lib/systemd/systemd" ] || [ ! -x "$TREE/usr/sbin/logrotate" ] || [ ! -x "$TREE/bin/kill" ]; then
        command -v debootstrap >/dev/null || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
        }
        log "building $TREE with debootstrap (once; a few minutes)"
        rm -rf "$TREE.build" "$TREE"
        timeout 1200 debootstrap --variant=minbase --include=$TREE_PACKAGES bookworm "$TREE.build" \
            http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
            { tail -n 30 "$work/debootstrap.log" >&2; rm -rf "$TREE.build"; fail "debootstrap"; }
        mv "$TREE.build" "$TREE"
    fi
    exec 9>&-
}

# --- booting it ----------------------------------------------------------------------
# Everything the booted tree changes lands in $work/upper; the cached tree stays as built.
boot() {
    mkdir -p "$work/upper" "$work/ovl" "$work/root"
    cat > "$work/inner.sh" <<EOF
set -e
R=$work/root
mount -t overlay overlay -o lowerdir=$TREE,upperdir=$work/upper,workdir=$work/ovl "\$R"
mount -t proc proc "\$R/proc"
# Kernel settings stay the host's: /proc/sys read-only (systemd-sysctl is skipped).
mount --bind "\$R/proc/sys" "\$R/proc/sys"; mount -o remount,bind,ro "\$R/proc/sys"
mount --rbind /sys "\$R/sys"
# The cgroup hierarchies as seen from the new cgroup namespace: rooted at $CG.
mount -t tmpfs -o mode=755 cgroup "\$R/sys/fs/cgroup"
while IFS=: read -r _ ctrl _; do
    if [ -z "\$ctrl" ]; then
        mkdir -p "\$R/sys/fs/cgroup/unified"; mount -t cgroup2 cgroup2 "\$R/sys/fs/cgroup/unified"
    else
        n=\${ctrl#name=}; o=\$ctrl; [ "\$n" = "\$ctrl" ] || o=none,\$ctrl
        mkdir -p "\$R/sys/fs/cgroup/\$n"; mount -t cgroup -o "\$o" cgroup "\$R/sys/fs/cgroup/\$n"
    fi
done < $work/cgroups
mount --rbind /dev "\$R/dev"
mount -t tmpfs -o mode=755 tmpfs "\$R/run"
exec chroot "\$R" /usr/bin/env -i container=ftpwatch-e2e /lib/systemd/systemd --system --log-target=null
EOF
    # systemd gets a cgroup of its own in every hierarchy (cpuset needs cpus and mems).
    cat /proc/self/cgroup > "$work/cgroups"
    (
        set -e
        while IFS=: read -r _ ctrl path; do
            if [ -z "$ctrl" ]; then d=/sys/fs/cgroup/unified$path; else d=/sys/fs/cgroup/${ctrl#name=}$path; fi
            mkdir -p "$d/$CG"
            if [ -f "$d/cpuset.cpus" ]; then
                cat "$d/cpuset.cpus" > "$d/$CG/cpuset.cpus"; cat "$d/cpuset.mems" > "$d/$CG/cpuset.mems"
            fi
            echo "$BASHPID" > "$d/$CG/cgroup.procs"
        done < "$work/cgroups"
        exec ip netns exec "$LAB_C" unshare --fork --pid --mount --uts --ipc --cgroup --propagation private \
            -- bash "$work/inner.sh"
    ) >"$work/boot.log" 2>&1 &
    BOOT_PID=$!
    find_sysd() {
        local c
        c=$(cat "/proc/$BOOT_PID/task/$BOOT_PID/children" 2>/dev/null) || return 1
        c=${c%% *}
        [ -n "$c" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && SYSD=$c
    }
    wait_until 20 "systemd to start (boot log: $(cat "$work/boot.log" 2>/dev/null))" find_sysd
    wait_until 20 "systemd's control socket" sd test -S /run/systemd/private
    local state
    state=$(timeout 90 nsenter -t "$SYSD" -p -m -r -w env -i PATH=/usr/bin:/bin systemctl is-system-running --wait 2>&1) || true
    case "$state" in
        running) ;;
        degraded) echo "systemd-e2e: note: system degraded:" >&2; sd systemctl --failed --no-pager >&2 || true ;;
        *) fail "systemd did not finish booting: '$state'" ;;
    esac
}

# --- installing the project's files into the tree (before boot, into the overlay) ------
install_files() {
    local u=$work/upper
    install -D -m 0755 "$work/ftpwatch" "$u/usr/local/bin/ftpwatch"
    install -D -m 0644 "$UNIT_FILE" "$u/etc/systemd/system/ftpwatch.service"
    install -D -m 0644 "$root/systemd/ftpwatch.logrotate" "$u/etc/logrotate.d/ftpwatch"
    # The environment file as shipped, with the lab's interface and our metrics port.
    sed -e "s/^\(FTPWATCH_OPTS=.*\)-i eth0 -i eth1/\1-i $IFACE/" -e "s/^\(FTPWATCH_OPTS=.*\):10426/\1:$PORT/" \
        "$root/systemd/ftpwatch.env" > "$work/ftpwatch.env"
    grep -q "^FTPWATCH_OPTS=\"-i $IFACE .*:$PORT\"" "$work/ftpwatch.env" ||
        fail "systemd/ftpwatch.env changed shape; cannot set the interface and port: $(grep FTPWATCH_OPTS "$root/systemd/ftpwatch.env")"
    diff "$root/systemd/ftpwatch.env" "$work/ftpwatch.env" | sed 's/^/  env: /' || true
    install -D -m 0644 "$work/ftpwatch.env" "$u/etc/default/ftpwatch"
    # A second unit, when the project has one: installed as shipped.
    if [ -f "$root/systemd/ftpwatch-proxy.service" ]; then
        install -D -m 0644 "$root/systemd/ftpwatch-proxy.service" "$u/etc/systemd/system/ftpwatch-proxy.service"
        if [ -f "$root/systemd/ftpwatch-proxy.env" ]; then
            # As shipped, with the lab's server as the upstream (reverse mode).
            sed "s/^\(FTPWATCH_PROXY_OPTS=.*--upstream \)[^ \"]*/\1$SRV4:21/" \
                "$root/systemd/ftpwatch-proxy.env" > "$work/ftpwatch-proxy.env"
            diff "$root/systemd/ftpwatch-proxy.env" "$work/ftpwatch-proxy.env" | sed 's/^/  proxy env: /' || true
            install -D -m 0644 "$work/ftpwatch-proxy.env" "$u/etc/default/ftpwatch-proxy"
        fi
        [ ! -f "$root/systemd/ftpwatch-proxy.logrotate" ] ||
            install -D -m 0644 "$root/systemd/ftpwatch-proxy.logrotate" "$u/etc/logrotate.d/ftpwatch-proxy"
    fi
}

# --- generic checks of one unit --------------------------------------------------------
prop() { sd systemctl show -p "$2" --value "$1"; }
main_pid() { prop "$1" MainPID; }
is_active() { [ "$(prop "$1" ActiveState)" = active ] && [ "$(main_pid "$1")" != 0 ]; }
status_field() { # unit field -> value of /proc/MAINPID/status's field
    sd cat "/proc/$(main_pid "$1")/status" | awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }'
}
# The capability mask a unit's AmbientCapabilities= asks for (16 hex digits, as in status).
CAPS=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
      LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
      SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
      SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
      MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
      CHECKPOINT_RESTORE)
ambient_mask() {
    local mask=0 c i
    for c in $(sed -n 's/^AmbientCapabilities=//p' "$1"); do
        for i in "${!CAPS[@]}"; do [ "CAP_${CAPS[$i]}" = "$c" ] && mask=$((mask | (1 << i))); done
    done
    printf '%016x' "$mask"
}

# check_unit UNIT CAPEFF [URL]: enable --now; active and still active 5 s later with the
# same MainPID; a dynamic user; exactly CAPEFF effective (and nothing more permitted,
# bounding or ambient); no new privileges; URL answers (inside $LAB_C).
check_unit() {
    local unit=$1 capeff=$2 url=${3:-} pid uid f
    UNITS_CHECKED="${UNITS_CHECKED:-} $unit"
    log "$unit: enable --now"
    sd systemctl enable --now "$unit" >/dev/null 2>&1 || fail "systemctl enable --now $unit"
    wait_until 15 "$unit to be active" is_active "$unit"
    pid=$(main_pid "$unit")
    [ "$pid" != 0 ] || fail "$unit exited right after starting"
    sleep 5
    is_active "$unit" || fail "$unit did not stay active"
    [ "$(main_pid "$unit")" = "$pid" ] && [ "$(prop "$unit" NRestarts)" = 0 ] ||
        fail "$unit restarted within 5 s (MainPID $pid -> $(main_pid "$unit"), NRestarts $(prop "$unit" NRestarts))"
    echo "  ok  $unit active, same MainPID $pid 5 s later, NRestarts 0"

    uid=$(status_field "$unit" Uid)
    # shellcheck disable=SC2086
    set -- $uid
    [ "$1" = "$2" ] && [ "$1" = "$3" ] && [ "$1" = "$4" ] || fail "$unit: mixed uids: $uid"
    [ "$1" -ge 61184 ] && [ "$1" -le 65519 ] || fail "$unit: uid $1 is not a dynamic user's (61184..65519)"
    [ "$(prop "$unit" DynamicUser)" = yes ] || fail "$unit: DynamicUser is not yes"
    sd test -e "/run/systemd/dynamic-uid/$1" || fail "$unit: uid $1 not allocated by systemd"
    uid=$1
    local gid; gid=$(status_field "$unit" Gid); gid=${gid%%[[:space:]]*}
    [ "$gid" = "$uid" ] || fail "$unit: gid $gid, expected the dynamic user's $uid"
    echo "  ok  $unit runs as dynamic user uid=gid=$uid"

    for f in CapEff CapPrm CapAmb CapBnd; do
        local got; got=$(status_field "$unit" $f)
        [ "$got" = "$capeff" ] || fail "$unit: $f $got, expected $capeff"
    done
    [ "$(status_field "$unit" CapInh)" = "$capeff" ] || [ "$(status_field "$unit" CapInh)" = 0000000000000000 ] ||
        fail "$unit: CapInh $(status_field "$unit" CapInh)"
    [ "$(status_field "$unit" NoNewPrivs)" = 1 ] || fail "$unit: NoNewPrivs not set"
    [ "$(status_field "$unit" Seccomp)" = 2 ] || fail "$unit: no seccomp filter"
    echo "  ok  $unit CapEff=CapPrm=CapAmb=CapBnd=$capeff, NoNewPrivs 1, Seccomp 2"

    if [ -n "$url" ]; then
        in_c curl -sf -o "$work/$unit.url" --max-time 5 "$url" || fail "$unit: $url not served"
        echo "  ok  $unit serves $url ($(wc -l < "$work/$unit.url") lines)"
    fi
}

# check_stop UNIT: systemctl stop returns within 3 s, cleanly.
check_stop() {
    local unit=$1 t0 ms
    t0=$(now_ms)
    sd systemctl stop "$unit" || fail "systemctl stop $unit"
    ms=$(($(now_ms) - t0))
    [ "$(prop "$unit" ActiveState)" = inactive ] || fail "$unit is $(prop "$unit" ActiveState) after stop"
    [ "$ms" -lt 3000 ] || fail "systemctl stop $unit took $ms ms (limit 3000)"
    [ "$(prop "$unit" Result)" = success ] || fail "$unit: Result=$(prop "$unit" Result) after stop"
    echo "  ok  systemctl stop $unit: $ms ms, inactive, Result=success"
}

# check_crash_restart UNIT: SIGKILL of the main process; restarted after RestartSec.
check_crash_restart() {
    local unit=$1 pid n0 t0 ms sec new
    sd systemctl start "$unit" || fail "systemctl start $unit"
    wait_until 15 "$unit to be active" is_active "$unit"
    pid=$(main_pid "$unit"); n0=$(prop "$unit" NRestarts)
    sec=$(prop "$unit" RestartUSec)   # e.g. 5s
    t0=$(now_ms)
    sd kill -KILL "$pid"
    restarted() { new=$(main_pid "$unit"); [ "$new" != 0 ] && [ "$new" != "$pid" ] && is_active "$unit"; }
    wait_until 20 "$unit to be restarted after SIGKILL" restarted
    ms=$(($(now_ms) - t0))
    [ "$(prop "$unit" NRestarts)" = $((n0 + 1)) ] || fail "$unit: NRestarts $(prop "$unit" NRestarts), expected $((n0 + 1))"
    [ "$ms" -ge 4500 ] || fail "$unit restarted after $ms ms, before RestartSec=$sec"
    echo "  ok  SIGKILL of $unit's MainPID $pid: restarted as $new after $ms ms (RestartSec=$sec), NRestarts $((n0 + 1))"
}

# --- the event log, reload, logrotate (ftpwatch's, and the proxy's when present) -------
# check_event_log UNIT LOG FTP_HOST METRICS_URL: downloads from FTP_HOST (the lab's server,
# or a proxy in front of it) must land in LOG, also after a reload and after logrotate.
transfers() { sd sh -c "grep -c '\"type\":\"transfer\"' '$1' || true"; }
file_mode() { sd stat -L -c '%a %u' "$1"; }
retrs_completed() { # metrics URL -> completed RETRs, summed over the other labels
    in_c curl -sf --max-time 5 "$1" | awk '/^ftp_transfers_total\{/ && /command="RETR"/ && /outcome="completed"/ { n += $2 } END { print n + 0 }'
}
check_event_log() {
    local unit=$1 log=$2 host=$3 murl=$4 uid pid n dir
    dir=$(dirname "$log")
    uid=$(status_field "$unit" Uid); uid=${uid%%[[:space:]]*}
    pid=$(main_pid "$unit")
    download() { in_c curl -sS -o /dev/null --max-time 20 "ftp://$LAB_USER:$LAB_PASS@$host/small.bin" || fail "curl download via $host"; }
    # One download; its transfer record must land in $log and in none of the files given.
    download_lands_in_log() { # what, files that must keep their counts...
        local what=$1 before=() f i n0
        shift
        for f in "$@"; do before+=("$(transfers "$f")"); done
        n0=$(transfers "$log")
        download
        one_more() { [ "$(transfers "$log")" = $((n0 + 1)) ]; }
        wait_until 10 "the transfer record in $log ($what)" one_more
        i=0
        for f in "$@"; do
            [ "$(transfers "$f")" = "${before[$i]}" ] || fail "$f changed after $what: ${before[$i]} -> $(transfers "$f") transfers"
            i=$((i + 1))
        done
    }
    log "$unit: event log, reload, logrotate"
    [ "$(file_mode "$log")" = "640 $uid" ] || fail "$log: mode/owner $(file_mode "$log"), expected 640 $uid"
    [ "$(file_mode "$dir")" = "750 $uid" ] || fail "$dir: $(file_mode "$dir"), expected 750 $uid"
    echo "  ok  $log created at start: mode 0640, owner the dynamic user; directory 0750"
    download_lands_in_log "a download"
    download
    two_retrs() { [ "$(retrs_completed "$murl")" = 2 ]; }
    wait_until 10 "2 RETRs counted in $murl" two_retrs
    n=$(transfers "$log")
    [ "$n" = 2 ] || fail "$log: $n transfers, expected 2"
    sd grep -q '"type":"session"' "$log" || fail "$log: no session record"
    echo "  ok  2 downloads: 2 transfer records and session records in $log; /metrics counts 2 RETRs"

    # systemctl reload: ExecReload sends SIGHUP; the file is reopened by name.
    sd mv "$log" "$log.moved"
    sd systemctl reload "$unit" || fail "systemctl reload $unit"
    wait_until 5 "$log to be reopened after reload" sd test -f "$log"
    [ "$(main_pid "$unit")" = "$pid" ] || fail "reload changed MainPID $pid -> $(main_pid "$unit")"
    [ "$(file_mode "$log")" = "640 $uid" ] || fail "reopened $log: $(file_mode "$log")"
    download_lands_in_log "reload" "$log.moved"
    echo "  ok  reload: same MainPID $pid, new $log (0640) gets the new record, the moved file keeps its 2"
    sd journalctl -u "$unit" --no-pager | grep -q "event log reopened" || fail "no 'event log reopened' in $unit's journal"
    echo "  ok  journal: event log reopened"

    # logrotate's daily run as Debian does it: logrotate.service, /etc/logrotate.conf
    # (global "create"), with the state file saying this log was last rotated 2 days ago.
    sd sh -c "mkdir -p /var/lib/logrotate; f=/var/lib/logrotate/status
        [ -s \$f ] || echo 'logrotate state -- version 2' > \$f
        grep -v '^\"$log\" ' \$f > \$f.new || true
        echo \"\\\"$log\\\" \$(date -d '2 days ago' +%Y-%-m-%-d-%-H:0:0)\" >> \$f.new; mv \$f.new \$f"
    n=$(transfers "$log")
    sd systemctl start logrotate.service || fail "logrotate.service failed: $(sd journalctl -u logrotate --no-pager | tail -n 20)"
    sd test -f "$log.1" || fail "logrotate.service did not rotate $log: $(sd journalctl -u logrotate --no-pager | tail -n 20)"
    [ "$(transfers "$log.1")" = "$n" ] || fail "$log.1 has $(transfers "$log.1") transfers, expected $n"
    [ "$(main_pid "$unit")" = "$pid" ] || fail "logrotate changed MainPID $pid -> $(main_pid "$unit")"
    [ "$(file_mode "$log")" = "640 $uid" ] || fail "$log after logrotate: $(file_mode "$log")"
    download_lands_in_log "logrotate.service" "$log.1"
    echo "  ok  logrotate.service: $log -> $log.1; same MainPID; the new $log (0640) gets the new record"

    # And by hand, the shipped file: `logrotate -f`. delaycompress now compresses .1.
    sd logrotate -f /etc/logrotate.d/ftpwatch || fail "logrotate -f /etc/logrotate.d/ftpwatch"
    sd test -f "$log.2.gz" || fail "no $log.2.gz after the second rotation: $(sd ls -l "$dir/")"
    sd gzip -t "$log.2.gz" || fail "$log.2.gz is not a valid gzip file"
    wait_until 5 "$log to be reopened after logrotate -f" sd test -f "$log"
    [ "$(main_pid "$unit")" = "$pid" ] || fail "logrotate -f changed MainPID"
    [ "$(file_mode "$log")" = "640 $uid" ] || fail "$log after logrotate -f: $(file_mode "$log")"
    download_lands_in_log "logrotate -f" "$log.1"
    echo "  ok  logrotate -f: $log.1 -> $log.2.gz (valid), $log -> $log.1; $unit writes on to the new $log"
    sd ls -l "$dir/" | sed 's/^/      /'
}

# --------------------------------------------------------------------------------------
[ -x "$BIN_SRC" ] || fail "no binary at $BIN_SRC"
cp "$BIN_SRC" "$work/ftpwatch"   # a rebuild during the run does not change what is tested
[ -f "$UNIT_FILE" ] || fail "no unit file $UNIT_FILE"
[ "$UNIT_FILE" = "$root/systemd/ftpwatch.service" ] || log "NOTE: testing $UNIT_FILE instead of systemd/ftpwatch.service"
t_start=$(date +%s)
lab_install
ensure_tree
lab_up
lab_start_server vsftpd
install_files
log "booting systemd in $TREE (overlay in $work, network namespace $LAB_C)"
boot
log "systemd $(sd systemctl --version | head -n 1 | awk '{print $2}') is PID 1 (host PID $SYSD), $(sd systemctl is-system-running)"

check_unit ftpwatch 0000000000003000 "http://127.0.0.1:$PORT/metrics"
[ "$(ambient_mask "$UNIT_FILE")" = 0000000000003000 ] ||
    echo "  note: the unit's AmbientCapabilities= asks for $(ambient_mask "$UNIT_FILE"), not 0000000000003000"
grep -q "^ftpwatch_capture_up{interface=\"$IFACE\"} 1" "$work/ftpwatch.url" || fail "ftpwatch_capture_up for $IFACE is not 1"
echo "  ok  ftpwatch_capture_up{interface=\"$IFACE\"} 1"
check_event_log ftpwatch /var/log/ftpwatch/events.jsonl "$SRV4" "http://127.0.0.1:$PORT/metrics"
log "ftpwatch: stop, crash"
check_stop ftpwatch
check_crash_restart ftpwatch
in_c curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/metrics" || fail "/metrics not served after the restart"
echo "  ok  /metrics served again after the restart"
check_stop ftpwatch

# The proxy's FTPS, set up as systemd/ftpwatch-proxy.env says: the key in
# /etc/ssl/private (root:ssl-cert 0640), the group given to the dynamic user by the
# drop-in taken from the env file's own comment, the options it names. A client's AUTH
# TLS through the proxy must work.
check_proxy_tls_key() {
    local d=/etc/systemd/system/ftpwatch-proxy.service.d env=$work/ftpwatch-proxy-tls.env opts
    sed -n '/^#   \[Service\]/,/^# then here:/p' "$root/systemd/ftpwatch-proxy.env" |
        sed -n 's/^#   //p' > "$work/tls-dropin.conf"
    grep -qx 'SupplementaryGroups=ssl-cert' "$work/tls-dropin.conf" ||
        fail "no SupplementaryGroups=ssl-cert drop-in in ftpwatch-proxy.env's comment"
    opts=$(sed -n 's/^# then here: //p' "$root/systemd/ftpwatch-proxy.env")
    [ -n "$opts" ] || fail "no TLS options in ftpwatch-proxy.env's comment"
    log "ftpwatch-proxy: FTPS, its key root:ssl-cert 0640 (drop-in: $(tr '\n' ' ' < "$work/tls-dropin.conf"))"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ftpwatch proxy" \
        -keyout "$work/proxy.key" -out "$work/proxy.pem" 2>/dev/null
    sd sh -c 'getent group ssl-cert >/dev/null || groupadd -r ssl-cert'
    sd mkdir -p /etc/ssl/certs /etc/ssl/private "$d"
    sd sh -c "cat > /etc/ssl/certs/ftp-proxy.pem" < "$work/proxy.pem"
    sd sh -c "umask 077; cat > /etc/ssl/private/ftp-proxy.key; chgrp ssl-cert /etc/ssl/private/ftp-proxy.key; chmod 0640 /etc/ssl/private/ftp-proxy.key" < "$work/proxy.key"
    sd sh -c "cat > $d/tls.conf" < "$work/tls-dropin.conf"
    sed "s|^FTPWATCH_PROXY_OPTS=\"\(.*\)\"|FTPWATCH_PROXY_OPTS=\"\1 $opts\"|" "$work/ftpwatch-proxy.env" > "$env"
    sd sh -c "cat > /etc/default/ftpwatch-proxy" < "$env"
    sd systemctl daemon-reload
    sd systemctl start ftpwatch-proxy || fail "ftpwatch-proxy with its TLS drop-in did not start"
    wait_until 10 "ftpwatch-proxy active with TLS" sd systemctl is-active --quiet ftpwatch-proxy
    ftp_port_open() { in_c bash -c "exec 3<>/dev/tcp/127.0.0.1/21" 2>/dev/null; }
    wait_until 10 "ftpwatch-proxy's FTP port" ftp_port_open
    local got ok
    got=$(in_c curl -sS --max-time 20 --ssl-reqd -k -o /dev/null -w '%{response_code} %{size_download}' \
        "ftp://$LAB_USER:$LAB_PASS@127.0.0.1/small.bin") || fail "curl --ssl-reqd through the proxy"
    [ "$got" = "226 65536" ] || fail "curl --ssl-reqd through the proxy: $got"
    ok=$(in_c curl -sf --max-time 5 "http://127.0.0.1:$pport/metrics" |
        awk '$1 == "ftpwatch_proxy_tls_handshakes_total{channel=\"control\",leg=\"client\",result=\"ok\"}" { print $2 }')
    [ "${ok:-0}" -ge 1 ] || fail "no client TLS handshake counted: ${ok:-absent}"
    echo "  ok  key not world-readable, read through the ssl-cert group; curl --ssl-reqd through the proxy: 226, 65536 bytes; handshake counted"
    sd systemctl stop ftpwatch-proxy
    sd rm -f "$d/tls.conf"
    sd sh -c "cat > /etc/default/ftpwatch-proxy" < "$work/ftpwatch-proxy.env"
    sd systemctl daemon-reload
}

if [ -f "$root/systemd/ftpwatch-proxy.service" ]; then
    # The proxy's options and ports are its own; the generic checks apply as they are.
    # Its metrics port and event log, read from its own files (port 21 and its metrics
    # port are free here: this is the lab client's network namespace).
    pport=$(sed -n 's/^FTPWATCH_PROXY_OPTS=.*--listen [^ "]*:\([0-9][0-9]*\).*/\1/p' "$work/ftpwatch-proxy.env" 2>/dev/null || true)
    plog=$(sed -n 's/^ExecStart=.*--events \([^ ]*\).*/\1/p' "$root/systemd/ftpwatch-proxy.service")
    check_unit ftpwatch-proxy "$(ambient_mask "$root/systemd/ftpwatch-proxy.service")" \
        ${pport:+"http://127.0.0.1:$pport/metrics"}
    if [ -n "$pport" ] && [ -n "$plog" ] && grep -q -- "--upstream $SRV4:21" "$work/ftpwatch-proxy.env" &&
       grep -q -- "--ftp-listen \[::\]:21" "$work/ftpwatch-proxy.env"; then
        check_event_log ftpwatch-proxy "$plog" 127.0.0.1 "http://127.0.0.1:$pport/metrics"
    else
        echo "  skip ftpwatch-proxy event log: no --listen port, --events path, or reverse mode on [::]:21 in its files"
    fi
    check_stop ftpwatch-proxy
    check_crash_restart ftpwatch-proxy
    check_stop ftpwatch-proxy
    check_proxy_tls_key
else
    echo "  skip ftpwatch-proxy: systemd/ftpwatch-proxy.service does not exist"
fi
log "all checks passed ($(($(date +%s) - t_start)) s)"

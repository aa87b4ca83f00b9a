#!/usr/bin/env bash
# The systemd units of config-examples/systemd: what they promise and
# whether the programs really run under them.
#
# Without a running systemd, the units are checked in three ways:
#  1. statically: `systemd-analyze security --offline=true` gives each unit
#     an exposure of at most 2.0; the hardening directives are there; the
#     effective system-call allowlist (the unit's SystemCallFilter= lines
#     expanded with `systemd-analyze syscall-filter`) holds every call of
#     outrider's own seccomp table (lib/sandbox/sandbox_seccomp.c) and the calls
#     its sandbox makes to install itself, and none of a few dangerous ones;
#     every option in an ExecStart= line is one the program's usage names;
#     `systemd-analyze verify` accepts the units in a temp root holding the
#     binaries; `logrotate -d` accepts the rotation snippet.
#  2. live, in a private mount namespace whose /etc, /var, /run and /usr
#     are throw-away overlays (nothing reaches the host): the users come from the
#     shipped sysusers file, the directories from the units' *Directory=
#     lines, and each program is started with its unit's ExecStart (variables
#     expanded from Environment=/EnvironmentFile=), as the unit's user, with
#     the file system read-only except the unit's writable directories
#     (ProtectSystem=strict), a private /tmp, an empty bounding set,
#     no_new_privs, and the unit's system-call filter, address families and
#     MemoryDenyWriteExecute applied by a small libseccomp launcher as
#     systemd would apply them. CA, agent and proxy then work together: the
#     agent gets a certificate, the proxy (with the shipped config) checks
#     and serves an mTLS round trip, ExecReload reloads it, and the logrotate
#     snippet rotates the access log and makes the proxy reopen it.
#  3. the exposure scores are printed, for the record.
#
# Needs (Debian): systemd (systemd-analyze, systemd-sysusers), logrotate,
# util-linux (unshare, setpriv, runuser), gcc and libseccomp-dev (the
# launcher), curl, socat, openssl.

set -Eeuo pipefail

# Everything below runs in a private mount namespace, so the overlays and
# read-only remounts never touch the host.
if [ "${OR_SYSTEMD_TEST_NS:-}" != 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test_systemd_units: needs root (mount namespaces, users, setpriv)" >&2
        exit 1
    fi
    command -v unshare >/dev/null || { echo "unshare not found (util-linux)" >&2; exit 1; }
    exec env OR_SYSTEMD_TEST_NS=1 unshare -m --propagation private -- bash "$0" "$@"
fi

# shellcheck source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"

UNITS_DIR=$OUTRIDER_SRC/config-examples/systemd
UNITS=(outrider outrider-agent outrider-ca)
MAX_EXPOSURE=2.0
AGENT_ID=spiffe://cluster.local/ns/shop/sa/payments

for tool in systemd-analyze systemd-sysusers logrotate setpriv runuser cc curl socat openssl; do
    command -v "$tool" >/dev/null ||
        die "$tool not found: install the Debian packages systemd, logrotate, util-linux, gcc, libseccomp-dev, curl, socat, openssl"
done
for bin in outrider outrider-agent outrider-ca; do
    [ -x "$OUTRIDER_BIN/$bin" ] || die "no $bin in OUTRIDER_BIN=$OUTRIDER_BIN: build first"
done

# ---------------------------------------------------------------- unit file parsing

unit_file() { echo "$UNITS_DIR/$1.service"; }

# unit_values UNIT KEY: every value of KEY in the unit, one per line.
unit_values() {
    sed -n "s/^$2=//p" "$(unit_file "$1")"
}

unit_value() { unit_values "$1" "$2" | tail -n 1; }

# unit_env UNIT: the unit's Environment= and EnvironmentFile= assignments,
# later ones winning, as NAME=VALUE lines (EnvironmentFile read from the
# namespace's /etc, a leading "-" meaning optional).
unit_env() {
    local unit=$1 line word file
    while IFS= read -r line; do
        case $line in
        Environment=*)
            for word in ${line#Environment=}; do echo "$word"; done
            ;;
        EnvironmentFile=*)
            file=${line#EnvironmentFile=}
            file=${file#-}
            [ -f "$file" ] && grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$file"
            ;;
        esac
    done < <(grep -E '^(Environment|EnvironmentFile)=' "$(unit_file "$unit")")
    return 0
}

# exec_words UNIT KEY [MAINPID]: the command line of KEY (ExecStart,
# ExecReload) as systemd splits it, one word per line: ${VAR} from the
# unit's environment, $MAINPID from the argument.
exec_words() {
    local unit=$1 key=$2 mainpid=${3:-} cmd line name
    declare -A vars=()
    cmd=$(unit_value "$unit" "$key")
    while IFS= read -r line; do
        vars[${line%%=*}]=${line#*=} # a later assignment wins
    done < <(unit_env "$unit")
    for name in "${!vars[@]}"; do
        cmd=${cmd//"\${$name}"/${vars[$name]}}
    done
    cmd=${cmd//"\$MAINPID"/$mainpid}
    [[ $cmd != *'$'* ]] || { echo "unexpanded variable in $key of $unit: $cmd" >&2; return 1; }
    tr ' ' '\n' <<<"$cmd" | sed '/^$/d'
}

# ---------------------------------------------------------------- 1. static checks

check_exposure() {
    local unit=$1 out line score
    out=$(systemd-analyze security --offline=true --no-pager "$(unit_file "$unit")" 2>&1) || true
    line=$(grep -a 'Overall exposure level' <<<"$out" || true)
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$line")
    if [ -z "$score" ]; then
        fail "$unit: systemd-analyze security gives an overall exposure" "$(tail -n 5 <<<"$out")"
        return
    fi
    note "systemd-analyze security --offline=true $unit.service: $line"
    SCORES+=("$unit.service: $score")
    if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
        pass "$unit: exposure $score <= $MAX_EXPOSURE"
    else
        fail "$unit: exposure $score <= $MAX_EXPOSURE" "$(grep -a '✗' <<<"$out" | head -n 20)"
    fi
}

# assert_directive UNIT ERE WHAT: some line of the unit matches ERE.
assert_directive() {
    if grep -E -q -- "$2" "$(unit_file "$1")"; then
        pass "$1: $3"
    else
        fail "$1: $3" "no line matching: $2"
    fi
}

check_directives() {
    local unit=$1
    assert_directive "$unit" '^(User=[a-z][a-z0-9-]*|DynamicUser=yes)$' "runs as its own user"
    assert_directive "$unit" '^NoNewPrivileges=yes$' "NoNewPrivileges=yes"
    assert_directive "$unit" '^CapabilityBoundingSet=(CAP_NET_BIND_SERVICE)?$' \
        "CapabilityBoundingSet empty (or CAP_NET_BIND_SERVICE only)"
    assert_directive "$unit" '^AmbientCapabilities=(CAP_NET_BIND_SERVICE)?$' "no ambient capabilities"
    assert_directive "$unit" '^SystemCallFilter=@system-service$' "SystemCallFilter=@system-service"
    assert_directive "$unit" '^SystemCallFilter=~.*@privileged' "SystemCallFilter denies @privileged"
    assert_directive "$unit" '^SystemCallArchitectures=native$' "SystemCallArchitectures=native"
    assert_directive "$unit" '^SystemCallErrorNumber=EPERM$' "refused calls fail with EPERM, like outrider's own filter"
    assert_directive "$unit" '^ProtectSystem=strict$' "ProtectSystem=strict"
    assert_directive "$unit" '^ProtectHome=yes$' "ProtectHome=yes"
    assert_directive "$unit" '^PrivateTmp=yes$' "PrivateTmp=yes"
    assert_directive "$unit" '^PrivateDevices=yes$' "PrivateDevices=yes"
    assert_directive "$unit" '^MemoryDenyWriteExecute=yes$' "MemoryDenyWriteExecute=yes"
    assert_directive "$unit" '^RestrictAddressFamilies=AF_INET AF_INET6( AF_UNIX)?$' "RestrictAddressFamilies"
    assert_directive "$unit" '^Type=(exec|simple)$' "Type=exec or simple"
    assert_directive "$unit" '^Restart=on-failure$' "Restart=on-failure"
    assert_directive "$unit" '^TimeoutStopSec=[0-9]+s$' "TimeoutStopSec"
}

# The drain (timeouts.drain in the shipped config) must end before systemd
# stops waiting.
check_stop_timeout() {
    local drain stop
    drain=$(sed -n 's/.*drain: \([0-9]*\)s.*/\1/p' "$UNITS_DIR/outrider.yaml")
    stop=$(unit_value outrider TimeoutStopSec)
    stop=${stop%s}
    if [ -n "$drain" ] && [ "$stop" -gt "$drain" ]; then
        pass "outrider: TimeoutStopSec=${stop}s is longer than timeouts.drain (${drain}s)"
    else
        fail "outrider: TimeoutStopSec is longer than timeouts.drain" "TimeoutStopSec=${stop}s, drain=${drain:-?}s"
    fi
}

# Every --option in ExecStart is one that the program's usage text names.
check_exec_options() {
    local unit=$1 words prog usage opt missing=()
    mapfile -t words < <(unit_value "$unit" ExecStart | tr ' ' '\n' | sed '/^$/d')
    prog=$(basename "${words[0]}")
    usage=$("$OUTRIDER_BIN/$prog" --help) || { fail "$unit: $prog --help exits 0"; return; }
    [ -n "$usage" ] || { fail "$unit: $prog --help prints a usage"; return; }
    for opt in "${words[@]:1}"; do
        case $opt in
        -*) grep -E -q -- "${opt%%=*}([ =|]|\]|\$)" <<<"$usage" || missing+=("$opt") ;;
        esac
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        pass "$unit: every option of ExecStart is in '$prog --help' (${words[*]:1})"
    else
        fail "$unit: every option of ExecStart is in '$prog --help'" "unknown: ${missing[*]}"
    fi
}

# ---- system calls

SYSCALL_GROUPS=$T/syscall-groups.txt
systemd-analyze syscall-filter --no-pager >"$SYSCALL_GROUPS" 2>/dev/null ||
    die "systemd-analyze syscall-filter failed"

# expand NAME: the calls of a group (recursively) or the call itself.
expand() {
    local name=$1 member
    if [[ $name != @* ]]; then
        echo "$name"
        return
    fi
    grep -q "^$name\$" "$SYSCALL_GROUPS" || { echo "unknown group $name" >&2; return 1; }
    while IFS= read -r member; do
        expand "$member"
    done < <(awk -v g="$name" '/^@/ { on = ($1 == g); next }
        on && /^    [@a-z0-9_]/ { print $1 }' "$SYSCALL_GROUPS")
}

# allowed_calls UNIT: the calls the unit's SystemCallFilter= lines allow,
# applied in order as systemd does (an allow list, "~" lines remove).
allowed_calls() {
    local unit=$1 line item
    declare -A set=()
    while IFS= read -r line; do
        local deny=0
        [[ $line == ~* ]] && { deny=1; line=${line#\~}; }
        for item in $line; do
            while IFS= read -r call; do
                if [ "$deny" = 1 ]; then unset "set[$call]"; else set[$call]=1; fi
            done < <(expand "$item")
        done
    done < <(unit_values "$unit" SystemCallFilter)
    printf '%s\n' "${!set[@]}" | sort
}

# The calls of outrider's own allowlist, and those its sandbox makes before
# the filter is in (docs/security.md, "Sandbox"; lib/sandbox/sandbox.c).
own_calls() {
    sed -n '/^static const char \*const allowed\[\] = {/,/^};/p' "$OUTRIDER_SRC/lib/sandbox/sandbox_seccomp.c" |
        sed 's,/\*.*\*/,,' | grep -o '"[a-z0-9_]*"' | tr -d '"'
}
SANDBOX_SETUP_CALLS="prctl seccomp capget capset landlock_create_ruleset landlock_add_rule landlock_restrict_self bind execve"
DANGEROUS_CALLS="mount umount2 reboot init_module ptrace setuid setresuid setgroups chroot pivot_root kexec_load bpf swapon settimeofday"

check_syscalls() {
    local unit=$1 file=$T/$1.calls call own missing=() present=()
    allowed_calls "$unit" >"$file"
    mapfile -t own < <(own_calls)
    [ "${#own[@]}" -ge 40 ] || { fail "$unit: outrider's allowlist parsed from lib/sandbox/sandbox_seccomp.c" "only ${#own[@]} names"; return; }
    for call in "${own[@]}" $SANDBOX_SETUP_CALLS; do
        grep -qx "$call" "$file" || missing+=("$call")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        pass "$unit: SystemCallFilter lets through outrider's ${#own[@]} calls and its sandbox set-up ($SANDBOX_SETUP_CALLS)"
    else
        fail "$unit: SystemCallFilter lets through outrider's calls" "refused: ${missing[*]}"
    fi
    for call in $DANGEROUS_CALLS; do
        grep -qx "$call" "$file" && present+=("$call")
    done
    if [ "${#present[@]}" -eq 0 ]; then
        pass "$unit: SystemCallFilter refuses $DANGEROUS_CALLS"
    else
        fail "$unit: SystemCallFilter refuses dangerous calls" "allowed: ${present[*]}"
    fi
}

# ---- systemd-analyze verify, in a temp root holding the binaries

check_verify() {
    local root=$T/verify-root out rc=0
    mkdir -p "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
    ln -s usr/bin "$root/bin"
    cp "$OUTRIDER_BIN/outrider" "$OUTRIDER_BIN/outrider-agent" "$OUTRIDER_BIN/outrider-ca" "$root/usr/bin/"
    cp "$(type -P kill)" "$root/usr/bin/kill"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    cp "$UNITS_DIR"/*.service "$root/etc/systemd/system/"
    out=$(systemd-analyze verify --root="$root" "${UNITS[@]/%/.service}" 2>&1) || rc=$?
    if [ "$rc" = 0 ] && [ -z "$out" ]; then
        pass "systemd-analyze verify --root accepts the three units without a message"
    else
        fail "systemd-analyze verify --root accepts the three units without a message" "exit $rc" "$out"
    fi
}

SCORES=()
for unit in "${UNITS[@]}"; do
    [ -f "$(unit_file "$unit")" ] || die "missing $(unit_file "$unit")"
    check_exposure "$unit"
    check_directives "$unit"
    check_exec_options "$unit"
    check_syscalls "$unit"
done
assert_directive outrider '^ExecReload=/bin/kill -HUP \$MAINPID$' "ExecReload sends SIGHUP"
assert_directive outrider '^LogsDirectory=outrider$' "LogsDirectory for the access log"
check_stop_timeout
assert_eq "$(unit_value outrider User)" "$(unit_value outrider-agent User)" \
    "the proxy and the agent run as one user (they share the identity files)"
if [ "$(unit_value outrider-ca User)" != "$(unit_value outrider User)" ]; then
    pass "the CA runs as a user of its own"
else
    fail "the CA runs as a user of its own" "User=$(unit_value outrider-ca User)"
fi
check_verify

# ---------------------------------------------------------------- 2. live, in the namespace

# Throw-away /etc, /var, /run and /usr: writes land in a tmpfs of this namespace.
OVL=$T/overlay
mkdir -p "$OVL"
mount -t tmpfs -o mode=0755 tmpfs "$OVL"
for d in etc var run usr; do
    mkdir -p "$OVL/$d.up" "$OVL/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$OVL/$d.up,workdir=$OVL/$d.work" "/$d" ||
        die "cannot lay an overlay over /$d (needs overlayfs in this kernel)"
done

systemd-sysusers "$UNITS_DIR/outrider.sysusers" >"$T/sysusers.log" 2>&1 ||
    die "systemd-sysusers rejects outrider.sysusers" "$(cat "$T/sysusers.log")"
if id -u outrider >/dev/null 2>&1 && id -u outrider-ca >/dev/null 2>&1 &&
    [ "$(id -u outrider)" != "$(id -u outrider-ca)" ]; then
    pass "outrider.sysusers makes the users outrider ($(id -u outrider)) and outrider-ca ($(id -u outrider-ca))"
else
    die "outrider.sysusers makes the users outrider and outrider-ca" "$(cat "$T/sysusers.log")"
fi

# make_unit_dirs UNIT: the directories systemd makes for the unit before
# it starts: State/Logs/Runtime owned by its user, Configuration by root.
# Prints the writable ones.
make_unit_dirs() {
    local unit=$1 user kind base name mode owner
    user=$(unit_value "$unit" User)
    for kind in State:/var/lib Logs:/var/log Runtime:/run Configuration:/etc; do
        base=${kind#*:}
        kind=${kind%%:*}
        mode=$(unit_value "$unit" "${kind}DirectoryMode")
        for name in $(unit_values "$unit" "${kind}Directory"); do
            owner=$user
            [ "$kind" = Configuration ] && owner=root
            mkdir -p "$(dirname "$base/$name")"
            install -d -o "$owner" -g "$owner" -m "${mode:-0755}" "$base/$name"
            [ "$kind" = Configuration ] || echo "$base/$name"
        done
    done
}

# The launcher: applies a unit's system-call filter the way systemd does
# (allow list, everything else EPERM), its RestrictAddressFamilies= (socket
# only with those families) and MemoryDenyWriteExecute= (no mapping both
# writable and executable, no mprotect to executable), then execs.
# The launcher and the call lists live in the namespace's /run, where the
# units' users can read them ($T is private to the test's user).
LAUNCH_DIR=/run/unit-test
LAUNCHER=$LAUNCH_DIR/unit-seccomp
cat >"$T/unit-seccomp.c" <<'EOF'
/* unit-seccomp CALLS_FILE FAMILIES -- CMD...: runs CMD under a seccomp
 * filter like the one systemd builds from a unit: CALLS_FILE lists the
 * allowed calls, FAMILIES the socket families (comma-separated numbers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <seccomp.h>

static int add(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *a)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, a);
    return rc == -EEXIST ? 0 : rc;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: unit-seccomp CALLS_FILE FAMILIES -- CMD...\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    char name[128];
    int rc = 0;
    while (rc == 0 && fscanf(f, "%127s", name) == 1) {
        if (!strcmp(name, "socket") || !strcmp(name, "mmap") || !strcmp(name, "mprotect") ||
            !strcmp(name, "pkey_mprotect"))
            continue; /* argument rules below */
        rc = add(ctx, name, 0, NULL);
    }
    fclose(f);
    for (char *fam = strtok(argv[2], ","); rc == 0 && fam; fam = strtok(NULL, ",")) {
        struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, strtoul(fam, NULL, 10));
        rc = add(ctx, "socket", 1, &a);
    }
    struct scmp_arg_cmp nowrite = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0);
    struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
    if (rc == 0) rc = add(ctx, "mmap", 1, &nowrite);
    if (rc == 0) rc = add(ctx, "mmap", 1, &noexec);
    if (rc == 0) rc = add(ctx, "mprotect", 1, &noexec);
    if (rc == 0) rc = add(ctx, "pkey_mprotect", 1, &noexec);
    if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        rc = -errno;
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (rc != 0) {
        fprintf(stderr, "unit-seccomp: cannot install the filter: %s\n", strerror(-rc));
        return 2;
    }
    execv(argv[4], argv + 4);
    perror(argv[4]);
    return 127;
}
EOF
install -d -m 0755 "$LAUNCH_DIR"
cc -O1 -o "$LAUNCHER" "$T/unit-seccomp.c" -lseccomp 2>"$T/cc.err" ||
    die "cannot build the seccomp launcher (needs gcc and libseccomp-dev)" "$(cat "$T/cc.err")"

# families UNIT: RestrictAddressFamilies= as numbers.
families() {
    local fam out=()
    for fam in $(unit_value "$1" RestrictAddressFamilies); do
        case $fam in
        AF_UNIX) out+=(1) ;;
        AF_INET) out+=(2) ;;
        AF_INET6) out+=(10) ;;
        *) echo "unknown family $fam" >&2; return 1 ;;
        esac
    done
    local IFS=,
    echo "${out[*]}"
}

# run_unit NAME UNIT: starts the unit's ExecStart in the background (lib.sh
# start_bg, output in $T/NAME.out/.err) as systemd would: its own mount
# namespace with everything read-only except the unit's writable
# directories, a private /tmp and /var/tmp, empty /home and /root, as the
# unit's user with no capabilities, under the unit's seccomp filter, with
# the unit's environment and umask.
run_unit() {
    local name=$1 unit=$2 user writable cmd env
    user=$(unit_value "$unit" User)
    writable=$(make_unit_dirs "$unit" | tr '\n' ' ')
    allowed_calls "$unit" >"$LAUNCH_DIR/$unit.calls"
    chmod 0644 "$LAUNCH_DIR/$unit.calls"
    mapfile -t cmd < <(exec_words "$unit" ExecStart)
    mapfile -t env < <(unit_env "$unit")
    start_bg "$name" unshare -m --propagation private -- bash -c '
        set -e
        writable=$1 user=$2 umask_=$3 calls=$4 fams=$5 launcher=$6
        shift 6
        for d in $writable; do mount --bind "$d" "$d"; done
        awk "{ print \$5 }" /proc/self/mountinfo | sort -u | while read -r mp; do
            case " $writable " in *" $mp "*) continue ;; esac
            case $mp in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
            mount -o remount,bind,ro "$mp" 2>/dev/null || true
        done
        mount -t tmpfs -o mode=1777 tmpfs /tmp
        mount -t tmpfs -o mode=1777 tmpfs /var/tmp
        for h in /home /root; do [ -d "$h" ] && mount -t tmpfs -o mode=0755 tmpfs "$h"; done
        umask "$umask_"
        exec setpriv --reuid="$user" --regid="$user" --clear-groups --bounding-set=-all \
            --inh-caps=-all -- "$launcher" "$calls" "$fams" -- "$@"
    ' run-unit "$writable" "$user" "$(unit_value "$unit" UMask)" "$LAUNCH_DIR/$unit.calls" \
        "$(families "$unit")" "$LAUNCHER" /usr/bin/env -i "${env[@]}" "${cmd[@]}"
}

# The binaries at the paths the units name.
for bin in outrider outrider-agent outrider-ca; do
    install -m 0755 "$OUTRIDER_BIN/$bin" "/usr/bin/$bin"
done

# wait_log NAME ERE SECONDS: the program's stderr has a line matching ERE;
# ends the test if the program exits first.
wait_log() {
    local name=$1 pattern=$2 deadline=$((SECONDS + $3))
    until grep -E -q -- "$pattern" "$T/$name.err"; do
        if ! is_running "$name"; then
            die "$name exited before logging /$pattern/" "$(excerpt "$T/$name.err" 15)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$name did not log /$pattern/ within $3s" "$(excerpt "$T/$name.err" 15)"
        sleep 0.1
    done
}

alloc_ports CA_PORT IN_PORT OUT_PORT ADMIN_PORT APP_PORT

# ---- the CA, initialised as the README says

make_unit_dirs outrider-ca >/dev/null
runuser -u outrider-ca -- outrider-ca init --dir /var/lib/outrider-ca --trust-domain cluster.local \
    >"$T/ca-init.log" 2>&1 || die "outrider-ca init as outrider-ca failed" "$(cat "$T/ca-init.log")"
TOKEN=$(runuser -u outrider-ca -- outrider-ca token create --dir /var/lib/outrider-ca \
    --spiffe-id "$AGENT_ID" --ttl 1h 2>"$T/ca-token.log") ||
    die "outrider-ca token create as outrider-ca failed" "$(cat "$T/ca-token.log")"
echo "OUTRIDER_CA_LISTEN=127.0.0.1:$CA_PORT" >/etc/outrider-ca/ca.env
run_unit ca outrider-ca
wait_port "$CA_PORT" || die "outrider-ca does not listen on $CA_PORT" "$(excerpt "$T/ca.err" 15)"
wait_log ca 'sandbox applied' 5
assert_contains "$T/ca.err" "sandbox applied: run_as=$(id -u outrider-ca):.*seccomp=enforce" \
    "outrider-ca runs under its unit as outrider-ca, with its own seccomp filter on top"
assert_eq "outrider-ca" "$(stat -c %U /var/lib/outrider-ca/ca.key)" "the CA's key belongs to outrider-ca"

# ---- the agent, with agent.env and ca-bundle.pem as the README says

make_unit_dirs outrider-agent >/dev/null
cp /var/lib/outrider-ca/bundle.d/root.pem /etc/outrider/ca-bundle.pem
install -m 0600 /dev/null /etc/outrider/agent.env
cat >/etc/outrider/agent.env <<ENV
OUTRIDER_CA_URL=https://127.0.0.1:$CA_PORT
OUTRIDER_SPIFFE_ID=$AGENT_ID
OUTRIDER_JOIN_TOKEN=$TOKEN
ENV
run_unit agent outrider-agent
ID_DIR=/var/lib/outrider/identity
deadline=$((SECONDS + 20))
until [ -s "$ID_DIR/key.pem" ] && [ -s "$ID_DIR/cert.pem" ] && [ -s "$ID_DIR/bundle.pem" ]; do
    is_running agent || die "outrider-agent exited before writing the identity" "$(excerpt "$T/agent.err" 15)"
    [ "$SECONDS" -lt "$deadline" ] || die "outrider-agent wrote no identity in 20s" "$(excerpt "$T/agent.err" 15)"
    sleep 0.2
done
pass "outrider-agent under its unit wrote cert.pem, key.pem and bundle.pem into $ID_DIR"
assert_contains "$T/agent.err" "sandbox applied: run_as=$(id -u outrider):.*seccomp=enforce" \
    "outrider-agent runs under its unit as outrider, with its own seccomp filter on top"
assert_eq "outrider 600" "$(stat -L -c '%U %a' "$ID_DIR/key.pem")" "key.pem belongs to outrider, mode 0600"
assert_eq "outrider 700" "$(stat -c '%U %a' "$ID_DIR")" "the identity directory belongs to outrider, mode 0700"
if runuser -u outrider-ca -- cat "$ID_DIR/key.pem" >/dev/null 2>&1; then
    fail "another user (outrider-ca) cannot read key.pem"
else
    pass "another user (outrider-ca) cannot read key.pem"
fi
assert_contains /run/outrider-agent/status.json '"state": *"ok"' "the agent's status file says ok"

# ---- the proxy: the shipped config checks, then a loopback variant serves

install -m 0644 "$UNITS_DIR/outrider.yaml" /etc/outrider/outrider.yaml
make_unit_dirs outrider >/dev/null
rc=0
runuser -u outrider -- outrider check -c /etc/outrider/outrider.yaml >"$T/check.out" 2>&1 || rc=$?
assert_exit 0 "$rc" "outrider check -c /etc/outrider/outrider.yaml (the shipped config, as outrider)"
assert_contains "$T/check.out" "OK \(identity $AGENT_ID" "the shipped config loads the identity the agent wrote"

# The same config on loopback ports: the outbound listener reaches the
# inbound one, which must present the agent's identity, and the policy
# allows that identity.
sed -e "s/0\.0\.0\.0:15006/127.0.0.1:$IN_PORT/" \
    -e "s/127\.0\.0\.1:15001/127.0.0.1:$OUT_PORT/" \
    -e "s/127\.0\.0\.1:15000/127.0.0.1:$ADMIN_PORT/" \
    -e "s/127\.0\.0\.1:8080/127.0.0.1:$APP_PORT/" \
    -e "s/orders\.internal\.example:15006/127.0.0.1:$IN_PORT/" \
    -e "s#spiffe://cluster.local/ns/shop/sa/orders#$AGENT_ID#" \
    -e "s#spiffe://cluster.local/ns/web/sa/frontend#$AGENT_ID#" \
    -e "s/drain: 30s/drain: 5s/" \
    "$UNITS_DIR/outrider.yaml" >/etc/outrider/outrider.yaml
for port in "$IN_PORT" "$OUT_PORT" "$ADMIN_PORT" "$APP_PORT"; do
    grep -q ":$port" /etc/outrider/outrider.yaml || die "the loopback variant of outrider.yaml lacks port $port"
done
! grep -E -q '0\.0\.0\.0|\[::\]|:150[0-9][0-9]\b' /etc/outrider/outrider.yaml ||
    die "the loopback variant of outrider.yaml still names a wildcard address or a fixed port; update the sed above"
start_http_app app "$APP_PORT" "hello from the app"
run_unit proxy outrider
PROC_IS_PROXY["proxy"]=1
for port in "$IN_PORT" "$OUT_PORT" "$ADMIN_PORT"; do
    wait_port "$port" || die "outrider does not listen on $port" "$(excerpt "$T/proxy.err" 15)"
done
wait_log proxy 'sandbox applied' 5
assert_contains "$T/proxy.err" "sandbox applied: run_as=$(id -u outrider):.*capabilities=none.*seccomp=enforce" \
    "outrider runs under its unit as outrider, with its own seccomp filter on top"
body=$(curl -sS --max-time 10 "http://127.0.0.1:$OUT_PORT/api/x" 2>"$T/curl.err" || true)
assert_eq "hello from the app" "$body" "a request through outbound -> mTLS -> inbound reaches the app"
LOG=/var/log/outrider/access.log
assert_contains "$LOG" "\"peer_id\":\"$AGENT_ID\".*\"status\":200" "the access log under LogsDirectory has the request"
assert_eq "outrider 600" "$(stat -c '%U %a' "$LOG")" "access.log belongs to outrider, mode 0600 (UMask=0077)"

# ---- ExecReload

PROXY_PID=${PROC_PID[proxy]}
mapfile -t reload < <(exec_words outrider ExecReload "$PROXY_PID")
mark_log "$T/proxy.err"
"${reload[@]}"
assert_logged "$T/proxy.err" 'reload applied' "ExecReload (${reload[*]}) reloads the proxy"

# ---- logrotate: the shipped snippet, validated, then run for real; its
# systemctl call goes to a stand-in that signals the proxy.

SNIPPET=$UNITS_DIR/outrider.logrotate
rc=0
logrotate -d -s "$T/logrotate.state" "$SNIPPET" >"$T/logrotate-d.out" 2>&1 || rc=$?
if [ "$rc" = 0 ] && ! grep -qi 'error' "$T/logrotate-d.out"; then
    pass "logrotate -d accepts outrider.logrotate"
else
    fail "logrotate -d accepts outrider.logrotate" "exit $rc" "$(grep -i error "$T/logrotate-d.out" | head -n 5)"
fi
mkdir -p "$T/shim"
cat >"$T/shim/systemctl" <<SHIM
#!/bin/sh
echo "\$(id -un) \$*" >>"$T/systemctl.calls"
[ "\$*" = "kill --signal=SIGUSR1 --kill-whom=main outrider.service" ] || exit 1
exec kill -USR1 $PROXY_PID
SHIM
chmod 0755 "$T/shim/systemctl"
: >"$T/systemctl.calls"
before=$(wc -l <"$LOG")
mark_log "$T/proxy.err"
rc=0
PATH=$T/shim:$PATH logrotate -f -s "$T/logrotate.state" "$SNIPPET" >"$T/logrotate.out" 2>&1 || rc=$?
assert_exit 0 "$rc" "logrotate -f with outrider.logrotate"
assert_contains "$T/systemctl.calls" 'kill --signal=SIGUSR1 --kill-whom=main outrider.service' \
    "postrotate sends SIGUSR1 to the proxy's main process"
if [ -f "$LOG.1" ] && [ "$(wc -l <"$LOG.1")" = "$before" ]; then
    pass "the old lines moved to access.log.1 ($before lines)"
else
    fail "the old lines moved to access.log.1" "$(ls -l /var/log/outrider 2>&1)"
fi
curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$OUT_PORT/api/after-rotation" 2>>"$T/curl.err" || true
assert_contains "$LOG" '"path":"/api/after-rotation"' "after SIGUSR1 the proxy writes a new access.log"
assert_not_contains "$LOG.1" 'after-rotation' "nothing new goes to the rotated file"

# ---- stop: SIGTERM, as systemd does, within TimeoutStopSec
stop_proxy proxy
stop_bg agent
stop_bg ca

note "exposure scores (systemd-analyze security --offline=true): ${SCORES[*]}"

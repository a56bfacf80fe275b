#!/usr/bin/env bash
# Rehearses deploy/Dockerfile's final stage without a Docker engine: a root
# filesystem holding nothing but the herald binary, its data directory
# (owned by the image's user, mode 0700) and /tmp, mounted read-only as the
# Helm chart runs it, in a network namespace of its own. With the ENV, USER,
# VOLUME and HEALTHCHECK read from the Dockerfile, it checks that:
#   - `herald serve` starts as the non-root user, with no shell and no libc;
#   - it writes only its data directory (admin token, encryption key and
#     database generated there);
#   - the HEALTHCHECK command, run as that user, passes;
#   - `herald backup` makes an online copy (mode 0600) while serving;
#   - SIGTERM stops it cleanly (exit status 0).
# The rehearsal root is smaller than distroless (no CA certificates, time
# zones or /etc/passwd), so anything the binary needed from the base image
# at start would fail here.
#
#   sudo deploy/imagecheck.sh dist/herald-linux-amd64
#
# Needs root (mount, network and PID namespaces, chroot) on Linux: .ci/run
# runs it after deploy/build.sh. Exit status 0: the image's final stage
# works; 1: it does not; 77: this machine cannot rehearse it (not root, no
# namespaces, a mount or chown refused, a tool missing): nothing was checked.
set -euo pipefail
bin=$(realpath "${1:?usage: deploy/imagecheck.sh BINARY}")
self=$(realpath "$0")
cd "$(dirname "$self")/.."

fail() { echo "imagecheck: $*" >&2; exit 1; }
skip() { echo "imagecheck: cannot rehearse the image here: $*" >&2; exit 77; }
# setup runs a step of the rehearsal's own setting up: its failure says
# what the machine does not allow, not what is wrong with the image.
setup() { "$@" 2>/dev/null || skip "'$*' failed"; }

if [ "${IMAGECHECK_INSIDE:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || skip "needs root (namespaces and chroot)"
  for tool in unshare ip mount chroot timeout; do
    command -v "$tool" >/dev/null || skip "no $tool"
  done
  ns=(unshare --mount --propagation private --net --pid --fork --kill-child)
  setup "${ns[@]}" true
  # The work directory belongs to this side, outside the namespaces, so
  # it goes whatever happens inside; the mounts and every process started
  # inside go with the namespaces when their first process ends (and
  # --kill-child ends it if unshare itself is killed).
  work=$(mktemp -d)
  child=
  trap 'rm -rf "$work"' EXIT
  trap 'if [ -n "$child" ]; then kill -KILL "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi; exit 1' HUP INT TERM
  IMAGECHECK_INSIDE=1 IMAGECHECK_WORK="$work" "${ns[@]}" "$self" "$bin" &
  child=$!
  status=0
  wait "$child" || status=$?
  child=
  exit "$status"
fi

# The final stage of the Dockerfile, continuation lines joined.
final=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' deploy/Dockerfile |
  sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}')
instr() { printf '%s\n' "$final" | sed -n "s/^$1 //p"; }
entrypoint=$(instr ENTRYPOINT | tr -d '[]" ')
user=$(instr USER)
volume=$(instr VOLUME | tr -d '[]" ')
read -r -a image_env <<<"$(instr ENV | grep -oE 'HERALD_[A-Z_]+=[^[:space:]]+' | tr '\n' ' ')"
read -r -a healthcheck <<<"$(instr HEALTHCHECK | sed 's/.*CMD *\[//; s/\].*//' | tr -d '",')"
[ -n "$entrypoint" ] && [ -n "$user" ] && [ -n "$volume" ] && [ ${#image_env[@]} -gt 0 ] && [ ${#healthcheck[@]} -gt 1 ] ||
  fail "could not read ENTRYPOINT, USER, VOLUME, ENV and HEALTHCHECK from deploy/Dockerfile"
[ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "USER $user is root"

# The outer side made the work directory and removes it; this side is the
# PID namespace's first process: when it exits, herald dies with it and the
# mounts go with the mount namespace.
work=${IMAGECHECK_WORK:?}
root=$work/root
log=$work/serve.log
pid=
trap 'if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi' EXIT
install -d -m 0755 "$root"
install -D -m 0755 "$bin" "$root$entrypoint"
install -d -m 1777 "$root/tmp"
setup install -d -m 0700 -o "${user%%:*}" -g "${user##*:}" "$root$volume"

setup ip link set lo up
setup mount --make-rprivate /
setup mount --bind "$root" "$root"
setup mount --bind "$root$volume" "$root$volume"
setup mount --bind "$root/tmp" "$root/tmp"
# Also clears a noexec or nosuid the work directory's filesystem may have.
setup mount -o remount,bind,ro "$root"
if touch "$root/usr/probe" 2>/dev/null; then fail "the root filesystem is writable"; fi

chroot=$(command -v chroot)
# The image's environment and nothing else (env -i), as the image's user.
# Bounded, so that a hung command fails the check instead of the CI run.
as_image() { timeout 30 env -i "${image_env[@]}" "$chroot" --userspec="$user" "$root" "$@"; }

# Started directly (not through the function) so that $! is herald itself.
env -i "${image_env[@]}" "$chroot" --userspec="$user" "$root" "$entrypoint" serve >"$log" 2>&1 &
pid=$!
healthy=false
# Up to 120 s on a busy machine; over as soon as it passes or herald exits.
for _ in $(seq 1 240); do
  if as_image "${healthcheck[@]}" >/dev/null 2>&1; then healthy=true; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
$healthy || { cat "$log" >&2; fail "HEALTHCHECK (${healthcheck[*]}) never passed"; }
echo "imagecheck: serve is up as $user on a read-only root; HEALTHCHECK passes: ${healthcheck[*]}"

for f in admin-token encryption-key herald.db herald.db-wal herald.db-shm; do
  [ "$(stat -c '%a %u' "$root$volume/$f")" = "600 ${user%%:*}" ] || fail "$volume/$f is not mode 0600 owned by ${user%%:*}"
done
db=$(printf '%s\n' "${image_env[@]}" | sed -n 's/^HERALD_DB=//p')
as_image "$entrypoint" backup --db "$db" "$volume/imagecheck-backup.db"
[ "$(stat -c '%a' "$root$volume/imagecheck-backup.db")" = 600 ] || fail "the backup is not mode 0600"
echo "imagecheck: herald backup copied the database while serving"

kill -TERM "$pid"
for _ in $(seq 1 240); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; fail "serve still runs 120 s after SIGTERM"; fi
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || { cat "$log" >&2; fail "serve exited with status $status on SIGTERM"; }
grep -q '"msg":"stopped"' "$log" || { cat "$log" >&2; fail "serve did not log its clean stop"; }
echo "imagecheck: ok"

#!/usr/bin/env bash
# Start the whole stack in the foreground: Redis if needed, the schema, static files, the bootstrap
# data, then every Procfile process under honcho. Ctrl-C stops them all. Run scripts/setup.sh first
# (`make run` does both).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

[ -x .venv/bin/python ] || die ".venv is missing; run scripts/setup.sh (or make run)"

export PORT="${PORT:-8000}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export KUMO_LIBVIRT_URI="${KUMO_LIBVIRT_URI:-test:///default}"
# The Procfile names bare commands (celery, gunicorn, python): they must be the virtualenv's.
export VIRTUAL_ENV="$KUMO_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# Honcho pipes every process's output; unbuffered Python shows log lines as they happen.
export PYTHONUNBUFFERED=1
# glibc's malloc: at most 2 arenas per process instead of one per thread (8 x CPUs); the web worker,
# scheduler and conductor are threaded, and their per-thread arenas held ~5 MiB (bench/README.md).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

ensure_redis
# Agents download images from the API on this host's port; honcho gives every process its own
# PORT, so the address they use is fixed here.
export KUMO_INTERNAL_URL="${KUMO_INTERNAL_URL:-http://127.0.0.1:$PORT}"
# The agents' metadata proxies (no host of `make run` joined with a credential of its own) sign
# their guests' requests with a secret the control plane shares; made once, kept under var/.
if [ -z "${KUMO_METADATA_SECRET:-}" ]; then
    mkdir -p var
    [ -s var/metadata_secret ] || (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(32))' >var/metadata_secret)
    KUMO_METADATA_SECRET="$(cat var/metadata_secret)"
fi
export KUMO_METADATA_SECRET

mkdir -p var
python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
# The tiny guest (scripts/build_image.sh, offline from Debian packages) becomes image kumo-tiny.
scripts/build_image.sh
# And the tiny container (scripts/build_ct_image.sh) becomes image kumo-tiny-ct (hypervisor_type lxc).
scripts/build_ct_image.sh
python manage.py bootstrap --image var/guest/kumo-tiny.qcow2 --ct-image var/guest/kumo-tiny-ct.tar.gz

# Honcho hands each process a PORT of its own, counting up from -p in Procfile order; web is listed
# first so that it gets exactly $PORT.
if [ "${HOSTS:-0}" = 0 ]; then
    # A run with simulated hosts that crashed left them behind: this run has no use for them.
    [ -d /tmp/kumo-hosts/run ] && python -m simhosts down --tag run
    # The volume host's qemu-storage-daemon outlives its agent (guests keep their disks through an
    # agent restart), so it is stopped here once honcho is done; the volumes stay in var/volumes
    # with the database that knows them.
    stop_volume_daemon() { python -m compute_agent volume --stop-daemon --volumes-dir var/volumes || true; }
    trap stop_volume_daemon EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    honcho start -f Procfile -p "$PORT"
    exit
fi

# HOSTS=N: N simulated hosts compute-1..N (python -m simhosts), each a network and mount namespace
# with its own libvirtd and real qemu guests, and an agent each instead of the Procfile's one; the
# Procfile's volume host is replaced by the simulated storage host storage-1.
[[ "$HOSTS" =~ ^[1-9][0-9]?$ ]] || die "HOSTS=$HOSTS: give a number of hosts from 1 to 99"
[ "$(id -u)" -eq 0 ] || die "HOSTS=$HOSTS needs root: simulated hosts are namespaces with a libvirtd each"
cleanup() { python -m simhosts down --tag run || true; }
trap cleanup EXIT
# A signal (Ctrl-C, a supervisor's TERM, a closed terminal) waits for honcho to stop its processes,
# then leaves through the EXIT trap: the hosts are removed however the run ends.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# `up` removes whatever an earlier run (or a crash) left first.
# And storage-1, a volume host on the same fabric serving NBD at its own address (simhosts/storage.py).
# LXC_HOSTS=M: and M container hosts lxc-1..M (libvirt LXC); the scheduler then keeps VM images
# and container images each on their own kind of host (ImagePropertiesFilter).
LXC_HOSTS=${LXC_HOSTS:-0}
[[ "$LXC_HOSTS" =~ ^[0-9][0-9]?$ ]] || die "LXC_HOSTS=$LXC_HOSTS: give a number of container hosts"
python -m simhosts up "$HOSTS" --lxc "$LXC_HOSTS" --storage 1 --tag run
# A simulated host that dies (make host-fail) is fenced by simhosts itself (cloud/compute/fencing.py).
export KUMO_FENCING_DRIVER="${KUMO_FENCING_DRIVER:-simulated}"
procfile=var/Procfile.hosts
grep -v -e '^compute:' -e '^volume:' Procfile > "$procfile"
echo "storage-1: python -m simhosts --tag run agent --supervise storage-1" >> "$procfile"
# Each agent under a supervisor of its own (simhosts/supervise.py): honcho stops every process when
# one exits, and `make host-fail` kills an agent with its host.
for i in $(seq 1 "$HOSTS"); do
    echo "compute-$i: python -m simhosts --tag run agent --supervise compute-$i" >> "$procfile"
done
for i in $(seq 1 "$LXC_HOSTS"); do
    echo "lxc-$i: python -m simhosts --tag run agent --supervise lxc-$i" >> "$procfile"
done
# Not exec: the trap removes the hosts once honcho has stopped every process (Ctrl-C).
honcho start -f "$procfile" -p "$PORT"

# Helpers shared by scripts/setup.sh, scripts/run.sh and .ci/run. Source it; do not run it.
# It must work before the virtualenv exists, so it uses only bash and Debian's base tools.

KUMO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KUMO_ROOT

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Root runs apt-get directly; anyone else needs sudo, and we say so instead of failing obscurely.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install only the packages that are missing, so a machine that has everything pays nothing
# (not even an `apt-get update`).
apt_install() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

# Split redis://[user:pass@]host[:port][/db] into REDIS_HOST and REDIS_PORT.
parse_redis_url() {
    local rest="${1#*://}"
    rest="${rest##*@}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    REDIS_HOST="${rest%%:*}"
    REDIS_PORT=6379
    [[ "$rest" == *:* ]] && REDIS_PORT="${rest##*:}"
    [ -n "$REDIS_HOST" ] || REDIS_HOST=127.0.0.1
}

# +PONG, or a Redis error such as -NOAUTH, means a Redis server listens there. Anything else (a
# proxy that accepts every connection answers in HTTP) does not.
redis_answers() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r -t 2 reply <&3 && [[ "$reply" == [+-]* ]]
    ' _ "$1" "$2" 2>/dev/null
}

is_local_host() {
    case "$1" in 127.*|localhost|::1|"[::1]") return 0 ;; *) return 1 ;; esac
}

# Make sure Redis answers at REDIS_URL; start (and if need be install) a local one if not.
ensure_redis() {
    local url="${REDIS_URL:-redis://127.0.0.1:6379/0}" i
    case "$url" in
        redis://*|rediss://*) ;;
        *) log "REDIS_URL is not a TCP URL ($url); not checking it"; return 0 ;;
    esac
    parse_redis_url "$url"
    redis_answers "$REDIS_HOST" "$REDIS_PORT" && return 0
    is_local_host "$REDIS_HOST" ||
        die "Redis at $REDIS_HOST:$REDIS_PORT does not answer, and it is not ours to start"
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server
    fi
    log "starting redis-server on 127.0.0.1:$REDIS_PORT"
    # A cache-like broker for a dev/CI stack: no persistence, nothing written into the tree.
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        >/dev/null
    for i in $(seq 1 50); do
        redis_answers "$REDIS_HOST" "$REDIS_PORT" && return 0
        sleep 0.2
    done
    die "redis-server did not come up on port $REDIS_PORT"
}

# An AMQP server answers a protocol header it does not like with its own ("AMQP" + version).
amqp_answers() {
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "HELLO!!!" >&3
        IFS= read -r -n 4 -t 2 reply <&3 && [[ "$reply" == AMQP ]]
    ' _ "$1" "$2" 2>/dev/null
}

# Make sure RabbitMQ answers on 127.0.0.1:5672 (the tests run every fault scenario on it as well
# as on Redis); start (and if need be install) the machine's rabbitmq-server if not. rabbitmqctl
# must work for the tests to give each stack a virtual host of its own.
ensure_rabbitmq() {
    local port="${KUMO_IT_RABBITMQ_PORT:-5672}" i
    amqp_answers 127.0.0.1 "$port" && command -v rabbitmqctl >/dev/null 2>&1 && return 0
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
    log "starting rabbitmq-server"
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
    for i in $(seq 1 150); do
        amqp_answers 127.0.0.1 "$port" && return 0
        sleep 0.4
    done
    die "RabbitMQ did not come up on 127.0.0.1:$port"
}

# A build script's arguments: `[--force] [OUTPUT]`. Sets `output` (DEFAULT unless one is given) and
# `force`, and ends the script when OUTPUT is newer than the script and --force was not asked for.
build_output() {
    local default="$1"; shift
    force=0
    output="$default"
    for arg in "$@"; do
        case "$arg" in
            --force) force=1 ;;
            -*) die "unknown option: $arg (expected --force)" ;;
            *) output="$arg" ;;
        esac
    done
    if [ "$force" -eq 0 ] && [ -s "$output" ] && [ "$output" -nt "$0" ]; then
        log "$output is up to date (--force rebuilds it)"
        exit 0
    fi
}

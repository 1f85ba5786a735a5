#!/usr/bin/env bash
# Lint, then run the test suite. Extra arguments go to pytest (`make test ARGS="-k boot -x"`).
# Expects scripts/setup.sh --test to have run, and PostgreSQL and Redis to be up (.ci/run does both).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

# pytest-django creates and drops test_kumo next to this database; `kumo` itself need not exist.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kumo}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export KUMO_LIBVIRT_URI="${KUMO_LIBVIRT_URI:-test:///default}"
# Tests put screenshots, process logs and reports here; CI keeps the directory.
export KUMO_ARTIFACTS_DIR="${KUMO_ARTIFACTS_DIR:-$KUMO_ROOT/artifacts}"
mkdir -p "$KUMO_ARTIFACTS_DIR"
# Integration tests start Celery workers and agents by command name: they must be the venv's.
export VIRTUAL_ENV="$KUMO_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

# A lint or type failure fails the run, but the tests still run: one CI round shows all of them.
log "ruff check"
lint_status=0
ruff check . || lint_status=$?
log "mypy (mypy.ini)"
mypy || lint_status=$?

# pytest's "no tests collected" (5): a wrong path or a broken collection must not pass as green.
status=0
if [ "$#" -eq 0 ]; then
    # The whole suite (CI): the unit tests, which start no stack and no guest, on every core
    # (pytest-xdist; pytest-django gives each worker a test database of its own), then the others
    # in one process, one stack at a time as before. A failure in the first still runs the second.
    log "pytest tests/unit -n ${KUMO_UNIT_WORKERS:-auto}"
    python -m pytest -n "${KUMO_UNIT_WORKERS:-auto}" \
        --junitxml="$KUMO_ARTIFACTS_DIR/junit-unit.xml" tests/unit || status=$?
    [ "$status" -ne 5 ] || die "pytest collected no unit tests"
    log "pytest --ignore=tests/unit"
    rest=0
    python -m pytest --junitxml="$KUMO_ARTIFACTS_DIR/junit.xml" --ignore=tests/unit || rest=$?
    [ "$rest" -ne 5 ] || die "pytest collected no tests outside tests/unit"
    [ "$status" -ne 0 ] || status=$rest
else
    log "pytest $*"
    python -m pytest --junitxml="$KUMO_ARTIFACTS_DIR/junit.xml" "$@" || status=$?
    [ "$status" -ne 5 ] || die "pytest collected no tests"
fi
if [ "$status" -eq 0 ] && [ "$lint_status" -ne 0 ]; then
    die "tests passed, but ruff or mypy failed (see above)"
fi
exit "$status"

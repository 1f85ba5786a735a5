#!/usr/bin/env bash
# `make tempest`: Tempest in its own virtualenv (.venv-tempest), then tempest/run.py.
# Arguments go to tempest/run.py: --start-stack (CI), --url/--openrc (a running stack), -k REGEX.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

if [ ! -x .venv-tempest/bin/tempest ]; then
    log "installing Tempest into .venv-tempest"
    python3 -m venv .venv-tempest
    .venv-tempest/bin/pip install -q -U pip
    .venv-tempest/bin/pip install -q "tempest>=40"
fi
export PATH="$KUMO_ROOT/.venv/bin:$PATH"
exec .venv/bin/python tempest/run.py "$@"

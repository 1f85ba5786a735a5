# Kumo's entry points. `make run` and `make test` set up whatever is missing first, so both work on
# a fresh Debian 12 machine and are cheap to repeat.
#
#   make run  [PORT=8000] [KUMO_LIBVIRT_URI=test:///default] [DATABASE_URL=…] [REDIS_URL=…]
#             [HOSTS=3]  (simulated hosts compute-1..3 with real qemu guests instead of one agent,
#                         and storage host storage-1 instead of volume host volume-1)
#             [LXC_HOSTS=1]  (with HOSTS=N: and container hosts lxc-1.. running libvirt LXC)
#   make test [ARGS="-k boot -x"]
#   make host-fail HOST=compute-1 / make host-recover HOST=compute-1   (on make run HOSTS=N's hosts)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 8000
KUMO_LIBVIRT_URI ?= test:///default
REDIS_URL ?= redis://127.0.0.1:6379/0
HOSTS ?= 0
LXC_HOSTS ?= 0
export PORT KUMO_LIBVIRT_URI REDIS_URL HOSTS LXC_HOSTS
# Unset means the embedded SQLite database under var/ (see cloud/settings.py); an empty value
# would not, so DATABASE_URL is passed on only when it was given.
ifdef DATABASE_URL
export DATABASE_URL
endif

PYTHON := .venv/bin/python
ARGS ?=

.PHONY: help run test tempest setup setup-test migrate bootstrap lint bench image clean distclean \
	host-fail host-recover

help:
	@echo "make run        set up, then start the whole stack on port $(PORT) (Ctrl-C stops it)"
	@echo "make test       set up with test requirements, then ruff and pytest (ARGS=... for pytest)"
	@echo "make tempest    run Tempest's compute tests (tempest/tests.txt) against the running stack;"
	@echo "                TEMPEST_ARGS=--start-stack starts (and stops) a stack of its own"
	@echo "make setup      install Debian packages, .venv and requirements if missing"
	@echo "make migrate    apply database migrations"
	@echo "make bootstrap  create the admin/demo users, flavors and network; write openrc, clouds.yaml"
	@echo "make lint       ruff check"
	@echo "make bench      run the benchmarks in bench/ (not part of the tests)"
	@echo "make image      build the tiny test guest var/guest/kumo-tiny.qcow2 from Debian packages"
	@echo "                and the tiny container var/guest/kumo-tiny-ct.tar.gz (busybox, for LXC hosts)"
	@echo "make clean      remove var/ (embedded database, images), openrc, clouds.yaml and caches"
	@echo "make distclean  clean, and remove .venv"
	@echo "make host-fail HOST=compute-1     a simulated host of 'make run HOSTS=N' dies: its guests,"
	@echo "                libvirtd and agent are killed, its links cut (root)"
	@echo "make host-recover HOST=compute-1  it comes back: links up, libvirtd started, its guests"
	@echo "                shut off; its agent is started again (root)"

run: setup
	scripts/run.sh

test: setup-test
	scripts/test.sh $(ARGS)

TEMPEST_ARGS ?=
tempest: setup-test
	scripts/tempest.sh $(TEMPEST_ARGS)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

migrate: setup
	$(PYTHON) manage.py migrate --noinput

bootstrap: migrate
	$(PYTHON) manage.py bootstrap

lint: setup-test
	.venv/bin/ruff check .

image:
	scripts/build_image.sh
	scripts/build_ct_image.sh

bench: setup-test
	@if [ -x bench/run_all.sh ]; then bench/run_all.sh; else echo "no benchmarks yet (bench/run_all.sh)"; fi

# A simulated host's failure and return, on the hosts of a running `make run HOSTS=N` (tag run);
# the agent's supervisor in the Procfile holds the agent back until the host is recovered.
HOST ?=
host-fail host-recover:
	@[ -n "$(HOST)" ] || { echo "give the host: make $@ HOST=compute-1" >&2; exit 2; }
	@[ "$$(id -u)" -eq 0 ] || { echo "make $@ needs root, like HOSTS=N" >&2; exit 2; }
	$(PYTHON) -m simhosts --tag run $(patsubst host-%,%,$@) $(HOST)

# The credentials go with the database they belong to; .venv stays (it is slow to rebuild).
clean:
	rm -rf var/ openrc clouds.yaml artifacts/ .pytest_cache/ .ruff_cache/
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv

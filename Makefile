# The single entry point for development. `make help` lists the targets.
# Run as root on Debian: the test hosts are systemd-nspawn containers.

VENV := .cache/venv
PY := $(VENV)/bin/python
COLLECTION_LINK := .cache/collections/ansible_collections/pyserve/gunicorn
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections

APT_PACKAGES := debootstrap systemd-container iproute2 openssh-client debian-archive-keyring \
	nginx-light haproxy curl git tar python3-venv

.PHONY: help setup apt venv collection-link wheelhouse image lint unit hosts-test integration \
	load test build demo bench clean-hosts

help:
	@echo "make setup        install apt packages, the dev venv and the collection link"
	@echo "make demo         boot a test host, deploy the example app, show what answered"
	@echo "make test         lint, unit tests, build, test-host, integration and load tests"
	@echo "make lint | unit | build | hosts-test | integration | load"
	@echo "make bench        time converges, measure exposure, run the deploy benchmarks"
	@echo "make clean-hosts  remove every test host"

apt:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES)

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $$($(VENV)/bin/python -c \
		"import tomllib; f = open('pyproject.toml', 'rb'); \
		print(' '.join(tomllib.load(f)['project']['optional-dependencies']['dev']))")
	touch $@

collection-link:
	mkdir -p $(dir $(COLLECTION_LINK))
	ln -sfn ../../../.. $(COLLECTION_LINK)

setup: apt venv collection-link

wheelhouse: venv
	$(PY) -m hostlab wheelhouse

image: venv
	$(PY) -m hostlab image
	$(PY) -m hostlab image --suite trixie

lint: venv collection-link
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/yamllint -s .
	$(VENV)/bin/ansible-lint --offline

unit: venv collection-link
	$(VENV)/bin/pytest -q tests/unit

hosts-test: venv wheelhouse image
	$(VENV)/bin/pytest -q -p hostlab.pytest_plugin tests/hostlab

integration: venv collection-link wheelhouse image
	$(VENV)/bin/pytest -q -p hostlab.pytest_plugin tests/integration

build: venv
	rm -rf .cache/build && mkdir -p .cache/build
	$(VENV)/bin/ansible-galaxy collection build --output-path .cache/build .
	# Installed into a path of its own: the checkout's link would otherwise count as installed.
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.cache/build/installed $(VENV)/bin/ansible-galaxy \
		collection install -p .cache/build/installed .cache/build/pyserve-gunicorn-*.tar.gz
	test -f .cache/build/installed/ansible_collections/pyserve/gunicorn/roles/gunicorn/tasks/main.yml
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.cache/build/installed $(VENV)/bin/ansible-doc \
		-t role pyserve.gunicorn.gunicorn >/dev/null

# The zero-downtime proofs: the deploy benchmarks as tests, with their tables at the end.
load: venv collection-link wheelhouse image
	$(VENV)/bin/pytest -q -p hostlab.pytest_plugin tests/load

test: setup lint unit build hosts-test integration load

demo: setup wheelhouse image
	$(PY) -m examples.demo

bench: venv collection-link wheelhouse image
	$(PY) -m benchmarks.converge
	$(PY) -m benchmarks.deploy_events
	$(PY) -m benchmarks.rolling

clean-hosts: venv
	$(PY) -m hostlab down --all

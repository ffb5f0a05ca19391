# Shardwarden's front door. `make test` on a fresh machine does all set-up itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_VERSION := $(shell cat .nvmrc)
NODE_MAJOR := $(firstword $(subst ., ,$(NODE_VERSION)))
CACHE ?= $(or $(SHARDWARDEN_CACHE),$(HOME)/.cache/shardwarden)
export SHARDWARDEN_CACHE := $(CACHE)

# Use the machine's node when it is the declared major; otherwise install that Node from the
# npm registry (the node-linux-<arch> package carries the binary) into the cache.
NODE_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x64)
NODE_HOME := $(CACHE)/node/$(NODE_VERSION)-$(NODE_ARCH)
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
ifeq ($(SYSTEM_NODE_MAJOR),$(NODE_MAJOR))
NODE_STAMP :=
else
NODE_BIN := $(NODE_HOME)/node_modules/node-linux-$(NODE_ARCH)/bin
export PATH := $(NODE_BIN):$(PATH)
NODE_STAMP := $(NODE_BIN)/node
endif

JEST_ARGS ?=

.PHONY: help setup node deps system-packages kube-binaries test demo lint format build bench bench-simulator bench-operator bench-gateway bench-cold-start bench-rest-limiter bench-interactions bench-scale bench-bullmq-cost clean clean-cache

help:
	@echo "make test      set everything up, then run all tests (real apiserver, Redis, Postgres)"
	@echo "make demo      set everything up, then run the whole system here with a narrated scenario (docs/demo.md)"
	@echo "make setup     Node $(NODE_VERSION), npm dependencies, Debian packages, Kubernetes binaries"
	@echo "make lint      type-check, eslint, prettier --check"
	@echo "make build     compile TypeScript to dist/"
	@echo "make bench     benchmarks; each prints its figures (see docs/benchmarks.md)"
	@echo "               (one at a time: make bench-simulator, bench-operator, bench-gateway,"
	@echo "               bench-cold-start, bench-rest-limiter, bench-interactions, bench-scale,"
	@echo "               bench-bullmq-cost)"
	@echo "               bench-scale alone takes 7-9 minutes and 5+ GB of memory at its defaults"
	@echo "make clean     remove build output and node_modules (clean-cache: the binary cache too)"

setup: node deps system-packages kube-binaries

node: $(NODE_STAMP)
$(NODE_STAMP):
	@echo "installing Node $(NODE_VERSION) from the npm registry into $(NODE_HOME)"
	npm install --no-save --no-audit --no-fund --prefix "$(NODE_HOME)" "node-linux-$(NODE_ARCH)@$(NODE_VERSION)"
	@"$(NODE_STAMP)" --version

deps: node node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json $(NODE_STAMP)
	npm ci --no-audit --no-fund
	@touch $@

# redis-server, postgresql, openssl and prometheus (with promtool) come from Debian; so do the
# real node's container runtime, CNI plugins, netfilter tools and the busybox its test images are
# made of (testenv/real-node.ts), buildah and mmdebstrap that build the project image offline
# (testenv/images/build.sh), and the headless chromium that opens the demo's plot page
# (testenv/chromium.ts). Installed only when missing. Packages that would start a system service
# we never use (tests run their own on free ports and sockets), or whose recommends would
# (chromium's: upower, udev, notification-daemon), are installed without recommends and their
# service switched off.
system-packages:
	@missing=""; daemons=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	{ command -v prometheus && command -v promtool; } >/dev/null || daemons="$$daemons prometheus"; \
	command -v containerd >/dev/null || daemons="$$daemons containerd"; \
	command -v chromium >/dev/null || daemons="$$daemons chromium"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	[ -x /usr/lib/cni/bridge ] || missing="$$missing containernetworking-plugins"; \
	command -v iptables-restore >/dev/null || missing="$$missing iptables"; \
	command -v conntrack >/dev/null || missing="$$missing conntrack"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	command -v buildah >/dev/null || missing="$$missing buildah"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	if [ -n "$$missing$$daemons" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "missing Debian packages:$$missing$$daemons; install them (apt-get install$$missing$$daemons) and run make again" >&2; exit 1; \
	  fi; \
	  echo "installing$$missing$$daemons with apt-get"; \
	  apt-get update -qq && \
	  { [ -z "$$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } && \
	  { [ -z "$$daemons" ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$daemons && \
	    sh testenv/debian-service-off.sh $$daemons; }; }; \
	fi

kube-binaries:
	@testenv/binaries/build.sh >/dev/null

# Tests that run real operator/gateway/worker processes use the compiled dist/.
test: setup build
	npm test -- $(JEST_ARGS)

# The whole system on this machine (docs/demo.md), the pods on a real node when this machine can
# start one (else on kwok, with a warning); options: make demo DEMO_ARGS="--guilds 5000 --node kwok".
DEMO_ARGS ?=
demo: setup build
	node dist/demo/main.js $(DEMO_ARGS)

lint: deps
	npm run lint

format: deps
	npm run format

build: deps
	npm run build

.PHONY: generate
generate: deps
	npm run generate

# The plain install bundle in manifests/, rendered from the chart (a test fails when it is stale).
.PHONY: manifests
manifests: kube-binaries
	manifests/render.sh

bench: bench-simulator bench-operator bench-gateway bench-cold-start bench-rest-limiter bench-interactions bench-scale bench-bullmq-cost

bench-simulator: build
	node dist/benchmarks/discord-simulator.js

bench-operator: setup build
	node dist/benchmarks/operator.js

bench-gateway: setup build
	node dist/benchmarks/gateway.js

# Gateway pods from cold to every shard READY against Discord's 5 s identify window (4 shapes).
bench-cold-start: setup build
	node dist/benchmarks/cold-start.js

bench-rest-limiter: setup build
	node dist/benchmarks/rest-limiter.js

bench-interactions: setup build
	node dist/benchmarks/interaction-round-trip.js

# The largest shape this machine holds (256 shards, 16 cluster processes, workers) against
# docs/scaling.md's model: 7-9 minutes and 5+ GB of memory at the defaults.
bench-scale: setup build
	node dist/benchmarks/scale.js

# BullMQ's Redis CPU per dispatch of one job shape (options: --per, --size, --jobs, --variants).
bench-bullmq-cost: build
	node dist/benchmarks/bullmq-cost.js

clean:
	rm -rf dist node_modules coverage .test-results

clean-cache:
	rm -rf "$(CACHE)"

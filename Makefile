# render: two commands do everything on a fresh Debian 12 machine, as root:
#   make run    virtualenv + install + render the sample services into build/ with --diff
#   make test   install what the tests need (Python and Debian packages) and run the suite
#   make test-fast   the suite without the tests marked slow (real Puppet, systemd, oslo.config,
#               the SIGKILL loop): under a minute, no OpenStack virtualenv
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
APT     := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
# Debian packages the tests drive for real: puppet (hiera oracle), systemd (booted in a
# namespace for restart tests), util-linux (unshare, nsenter, setpriv, flock), mount (tmpfs and
# bind mounts inside private mount namespaces for the fault tests), iproute2, and what reads the
# sample catalog as its services would: haproxy (haproxy -c), systemd-container (the keys
# systemd-nspawn knows) and binutils (strings reads those key tables out of the binaries).
TEST_DEBS := puppet systemd util-linux mount iproute2 haproxy systemd-container binutils
# outputs: the fact, metrics and journal entries read back by their real consumers
TEST_DEBS += facter prometheus-node-exporter
# bundles: openssl cms encrypts a bundle to the agent's certificate and opens it (test_bundle*.py)
TEST_DEBS += openssl
# edits: pwck reads each container's rendered shadow (test_catalog_checks.py); openssl (above)
# checks the sample root hash
TEST_DEBS += passwd
# bench: tests/test_bench.py applies the bench's puppet-keystone manifest for real
TEST_DEBS += puppet-module-keystone
# eyaml (tests/test_eyaml.py, test_hiera_trees.py): the real eyaml command makes the tokens and puppet lookup reads them
# with hiera-eyaml; gnupg for ENC[GPG,...]; Debian's asn1crypto and cryptography for the package
TEST_DEBS += hiera-eyaml gnupg python3-asn1crypto python3-cryptography
# swift (tests/test_catalog_newsvc.py): Debian's swift 2.30 loads the rendered swift.conf and
# paste-deploy server files with its own loader; the proxy pipeline's authtoken filter imports
# keystonemiddleware
TEST_DEBS += python3-swift python3-keystonemiddleware
# preview: tests/test_preview.py makes real git repositories; render preview reads them with git archive
TEST_DEBS += git
# cluster restarts (tests/test_cluster_restart.py): a real etcd 3.4, started by the test on free loopback ports
# with its own data dir (never the package's system-wide etcd.service); etcdctl to inspect render/locks/ by hand
TEST_DEBS += etcd-server etcd-client
# Ceph clients and compute (tests/test_catalog_ceph.py): ceph-conf and ceph-authtool read ceph.conf
# and the keyrings; libvirtd (its QEMU driver too) reads libvirtd.conf, qemu.conf and the secrets (virsh)
TEST_DEBS += ceph-common libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
# The OpenStack packages whose oslo.config options the rendered INI files are checked against
# (tests/test_oslo.py), in their own virtualenv so render's stays light. PyPI's "heat" is an
# unrelated project: OpenStack Heat is published as openstack-heat. cinder lists its options by
# importing every backup driver, so the GCS one needs its extra. murano is retired upstream: its
# last release, 16.0.0, still installs and loads with these pins.
OSLO_VENV     := .venv-oslo
OSLO_PACKAGES := keystone glance openstack-placement nova neutron 'cinder[gcs]' openstack-heat \
                 ironic murano==16.0.0
DEMO    := --hieradata hieradata --templates service_templates --hiera-config contrib/demo/hiera.yaml \
           --machines-dir build/machines --host-root build/host --state-dir build/state \
           --node controller1.example.com
# deb: what builds and checks the package (debian/control's Build-Depends, lintian), and what its
# /usr/bin/render runs on in the throwaway-root test (Debian's python3 and libraries).
BUILD_DEBS := dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-hatchling
TEST_DEBS += $(BUILD_DEBS) lintian python3-jinja2 python3-yaml python3-oslo.config man-db \
             bash-completion
# make deb: the package is built in a copy of the tree under $(DEB_OUT)/src (dpkg-buildpackage
# writes its artefacts into the parent of the tree it builds), then moved to $(DEB_OUT).
DEB_OUT ?= build/deb
# Debian's own python3 and tools, never a python3 earlier on the caller's PATH (pyenv, a venv).
DEB_PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: debs deb deb-package build-debs lintian run test test-fast lint bench bench-debs golden-update oslo-data clean venv compile new-service

# Debian 12 ships python3 without a working venv (no ensurepip): install python3-venv when
# creating the virtualenv fails, then try again.
$(VENV)/.created:
	@command -v $(PYTHON) >/dev/null || { apt-get update -q && $(APT) python3; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); apt-get update -q && $(APT) python3-venv && $(PYTHON) -m venv $(VENV); }
	@touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

# Byte-compile the package (a no-op when up to date): a run under PYTHONDONTWRITEBYTECODE would
# otherwise recompile render's modules on every call, about 20 ms of a 100 ms budget.
compile: $(VENV)/.installed
	@$(BIN)/python -m compileall -q renderer
	@$(BIN)/python -m renderer.regexcache

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Checked on every run (a dpkg query, ~50 ms), so a package added to TEST_DEBS reaches old clones too.
define apt-missing
@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then apt-get update -q && $(APT) $$missing; fi
endef
debs:
	$(call apt-missing,$(TEST_DEBS))

build-debs:
	$(call apt-missing,$(BUILD_DEBS))

# The Debian package (debian/, README "Deploy: the Debian package"): the tracked and new files
# only, so a local virtualenv or build/ never reaches the source; render_*.deb lands in $(DEB_OUT).
deb: build-debs
	@$(MAKE) --no-print-directory deb-package

# The same without the apt step (tests/test_deb.py: tests install nothing; make debs did).
deb-package:
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src/render
	git ls-files -z -co --exclude-standard | tar -c --null -T - | tar -x -C $(DEB_OUT)/src/render
	cd $(DEB_OUT)/src/render && env PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b
	rm -f $(DEB_OUT)/render_*.deb $(DEB_OUT)/render_*.changes $(DEB_OUT)/render_*.buildinfo
	mv $(DEB_OUT)/src/render_* $(DEB_OUT)/ && rm -rf $(DEB_OUT)/src

# lintian on the package just built: an error fails make test (warnings are printed).
lintian: deb
	$(call apt-missing,lintian)
	lintian --fail-on error $(DEB_OUT)/render_*.changes

# Same fallback as $(VENV): the first virtualenv proves python3-venv works.
$(OSLO_VENV)/.installed: $(VENV)/.created tests/oslo-constraints.txt
	$(PYTHON) -m venv $(OSLO_VENV)
	$(OSLO_VENV)/bin/pip install -q -c tests/oslo-constraints.txt $(OSLO_PACKAGES)
	@touch $@

venv: $(VENV)/.installed

# Renders the sample into build/. The demo has no real containers: restarts go to a stand-in
# systemctl (contrib/demo-systemctl) that reports every unit running.
# Exit 2 means "changes were made", which is what a first run does.
run: compile
	@mkdir -p build/host
	@$(BIN)/python contrib/demo_machines.py service_templates build/machines hieradata
	@rc=0; $(BIN)/render --diff --systemctl contrib/demo-systemctl $(DEMO) --all || rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 2 ]; then exit $$rc; fi

# Lays out service_templates/$(NAME)/ (service.yaml with the shared container block, a starter
# template) and hieradata/data/services/$(NAME).yaml; refuses an invalid or existing name.
# README "Add a service" goes on from there. Needs no virtualenv.
new-service:
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=<service>" >&2; exit 64; }
	@$(PYTHON) contrib/new_service.py '$(NAME)'

lint: $(VENV)/.test-installed
	$(BIN)/ruff check renderer tests bench contrib
	$(BIN)/mypy renderer

# pytest exits 5 when it collects no test; that alone must not fail CI.
test: debs $(VENV)/.test-installed $(OSLO_VENV)/.installed lint lintian
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# Everything but the tests marked slow. Some fast tests still read what render writes with Debian
# tools (haproxy -c, systemd-analyze, the systemd-nspawn key table) or make mounts in a private
# namespace (util-linux, mount), hence debs; the OpenStack virtualenv is only for the slow ones.
test-fast: debs $(VENV)/.test-installed
	@rc=0; $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# make bench compares with puppet-keystone's no-change `puppet apply` (apt resolves the module's
# dependencies: openstacklib, inifile, stdlib, ...) and restarts containers under the real systemd
# booted in a namespace (util-linux unshare/nsenter, mount for the overlay over /etc).
BENCH_DEBS := puppet puppet-module-keystone systemd util-linux mount
bench-debs:
	$(call apt-missing,$(BENCH_DEBS))

bench: compile bench-debs
	$(BIN)/python bench/bench.py

# Every golden family: general cases (tests/data/golden), the catalog (tests/data/catalog) and the
# error messages (tests/data/errors). Review with git diff.
golden-update: $(VENV)/.test-installed
	RENDER_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/test_golden.py \
	    tests/test_catalog.py::test_service_golden tests/test_bad_input.py::test_error_golden

# Regenerates service_templates/_lib/oslo_options.json from the packages in $(OSLO_VENV).
oslo-data: $(VENV)/.test-installed $(OSLO_VENV)/.installed
	RENDER_OSLO_UPDATE=1 $(BIN)/python -m pytest -q tests/test_oslo.py -k option_data

clean:
	rm -rf build $(VENV) $(OSLO_VENV)

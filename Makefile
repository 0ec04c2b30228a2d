# Set-up is part of every target: the first run creates .venv and installs shadowlab with its
# test tools, the peer libraries the tests compare against (PennyLane, tencirpauli) and the
# execution back ends the tests run (Qiskit Aer, the Braket local simulator).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,peers,qiskit,braket,learn,distributed]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shadowlab demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

PEERS ?= ../peers
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pauli.py
	$(BIN)/python benchmarks/bench_derandomize.py $(if $(wildcard $(PEERS)/data_acquisition_shadow.py),--peer $(PEERS)/data_acquisition_shadow.py) $(if $(wildcard $(PEERS)/data_acquisition_shadow.cpp),--peer-cpp $(PEERS)/data_acquisition_shadow.cpp)
	$(BIN)/python benchmarks/bench_energy.py --seeds 20
	$(BIN)/python benchmarks/bench_entropy.py
	$(BIN)/python benchmarks/bench_fidelity.py --plot docs/figures/fidelity_vs_n.png

clean:
	rm -rf $(VENV) shadowlab-demo .pytest_cache benchmarks/.cache

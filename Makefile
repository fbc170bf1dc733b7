# The two commands of the README: `make demo` and `make test`. Both install what they need.
# uv from PATH, else the one bootstrap installed with pip (pyenv may not have a shim yet).
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PYTEST_ARGS ?=
# The project's folder (this Makefile's), where `.tributary/` lives whatever the current one.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

.PHONY: install demo test lint stack-up stack-down stack-status bench dagster

install:
	./scripts/bootstrap

demo: install
	$(UV) run tributary demo

test: install
	$(UV) run pytest $(PYTEST_ARGS)

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy .

# The Dagster webserver and daemon on the instance the demo's runs went to, on the lake the
# demo curated (the stack's REST catalog, unless TRIBUTARY_LAKE__CATALOG says otherwise).
dagster: install
	mkdir -p $(ROOT)/.tributary/dagster
	test -s $(ROOT)/.tributary/dagster/dagster.yaml || $(UV) run python -c "from cli.dagster import INSTANCE_YAML; open('$(ROOT)/.tributary/dagster/dagster.yaml', 'w').write(INSTANCE_YAML)"
	DAGSTER_HOME=$(ROOT)/.tributary/dagster TRIBUTARY_LAKE__CATALOG=$${TRIBUTARY_LAKE__CATALOG:-rest} \
		$(UV) run dagster dev -w $(ROOT)/workspace.yaml -h 127.0.0.1 -p 3000

stack-up: install
	$(UV) run tributary stack up

stack-down:
	$(UV) run tributary stack down

stack-status:
	$(UV) run tributary stack status

bench: install
	$(UV) run python benchmarks/bench_contract.py
	$(UV) run python benchmarks/bench_collector.py --private-kafka
	$(UV) run python benchmarks/bench_enricher.py
	$(UV) run python benchmarks/bench_stream.py

proto: install
	$(UV) run python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. ingestion/grpc/collector.proto

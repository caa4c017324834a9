# Two commands do everything: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENTS := .venv-clients
CLIENTS_STAMP := $(CLIENTS)/.installed

.PHONY: serve serve-keystone test check clients bench package deploy destroy clean
STAGE ?= dev

$(STAMP): requirements.txt requirements-vendor.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# The v1 clients (glance CLI, openstacksdk) and the uploader, in their own venv.
$(CLIENTS_STAMP): requirements-clients.txt
	$(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/pip install --quiet --upgrade pip
	$(CLIENTS)/bin/pip install --quiet -r requirements-clients.txt
	touch $(CLIENTS_STAMP)

clients: $(CLIENTS_STAMP)

serve: $(STAMP)
	$(BIN)/python -m chalicelib.local

# A real Keystone (installed once under ~/.cache/glance-v1-keystone) + the service in
# keystone mode; prints the OS_* variables to export for the glance CLI and openstacksdk.
serve-keystone: $(STAMP) $(CLIENTS_STAMP)
	GLANCE_SERVICE_PYTHON=$(CURDIR)/$(BIN)/python $(BIN)/python tools/keystone_local.py serve

test: $(STAMP) $(CLIENTS_STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest tests
	GLANCE_SERVICE_PYTHON=$(CURDIR)/$(BIN)/python \
	    $(CLIENTS)/bin/python -m pytest tests/e2e --confcutdir=tests/e2e

# The fast part (under a minute): the type checker, then the unit tests not marked slow
# (no processes, soak, fuzzer, chalice package, moto CloudFormation; no e2e).
check: $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest tests -m "not slow" --ignore=tests/e2e -n 2

bench: $(STAMP)
	$(BIN)/python -m bench

# The deployable artifacts of a stage (SAM template + zip), without deploying; the
# API's binary media types and gateway responses merged in (infra/gateway_responses.py).
package: $(STAMP)
	rm -rf dist/$(STAGE) dist/$(STAGE)-merge.json
	mkdir -p dist
	$(BIN)/python infra/gateway_responses.py $(STAGE) dist/$(STAGE)-merge.json
	$(BIN)/python infra/vendor.py
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) \
	    --merge-template dist/$(STAGE)-merge.json dist/$(STAGE)
	$(BIN)/cfn-lint infra/resources.yaml dist/$(STAGE)/sam.json
	@ls -l dist/$(STAGE)

# A preflight that changes nothing, then the resources stack, `chalice deploy`, bucket
# events -> finalizer (needs AWS credentials). PREFLIGHT_ONLY=yes stops after the checks.
deploy: $(STAMP)
	@$(BIN)/python infra/deploy.py $(STAGE) $(if $(filter yes,$(PREFLIGHT_ONLY)),--preflight-only)

# Removes a stage (chalice delete + the resources stack) after asking; keeps the tables
# and the bucket unless DESTROY_DATA=yes; YES=yes does not ask.
destroy: $(STAMP)
	@$(BIN)/python infra/destroy.py $(STAGE) $(if $(filter yes,$(YES)),--yes) \
	    $(if $(filter yes,$(DESTROY_DATA)),--delete-data)

# Deliver the dead-lettered events of the finalizer and the copier again; each message
# is deleted once its function succeeded (needs AWS credentials: SQS, lambda:Invoke).
.PHONY: redrive
redrive: $(STAMP)
	$(BIN)/python infra/redrive.py $(STAGE)

clean:
	rm -rf $(VENV) $(CLIENTS) .pytest_cache dist

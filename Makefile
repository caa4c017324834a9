# Two commands do everything: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLIENTS := .venv-clients
CLIENTS_STAMP := $(CLIENTS)/.installed

.PHONY: serve test clients bench package deploy clean
STAGE ?= dev

$(STAMP): requirements.txt requirements-dev.txt
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

test: $(STAMP) $(CLIENTS_STAMP)
	$(BIN)/python -m pytest tests
	GLANCE_SERVICE_PYTHON=$(CURDIR)/$(BIN)/python \
	    $(CLIENTS)/bin/python -m pytest tests/e2e --confcutdir=tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench

# The deployable artifacts of a stage (SAM template + zip), without deploying.
package: $(STAMP)
	rm -rf dist/$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) \
	    --merge-template infra/api-binary-media-types.json dist/$(STAGE)
	$(BIN)/cfn-lint infra/resources.yaml dist/$(STAGE)/sam.json
	@ls -l dist/$(STAGE)

# Resources stack, `chalice deploy`, bucket events -> finalizer (needs AWS credentials).
deploy: $(STAMP)
	$(BIN)/python infra/deploy.py $(STAGE)

clean:
	rm -rf $(VENV) $(CLIENTS) .pytest_cache dist

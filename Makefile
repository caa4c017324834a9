# Two commands do everything: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench package deploy clean
STAGE ?= dev

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m chalicelib.local

test: $(STAMP)
	$(BIN)/python -m pytest

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
	rm -rf $(VENV) .pytest_cache

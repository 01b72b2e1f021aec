# session-analytics: `make demo` runs the tool on bundled sample data; `make check` runs the tests
# that need nothing but pytest (about a minute); `make test` installs what every test needs and
# runs them all (what CI runs).

PYTHON ?= python3
SCRIPT := .claude/scripts/session-analytics.py
SAMPLES := tests/fixtures/demo-projects
SKILLS := tests/fixtures/skills
BROWSER_DEPS := tests/browser/node_modules/.installed
# LiteLLM's price file, pinned, for the test that compares it with the built-in price table.
# Only the wheel is fetched (never installed): the test reads the JSON inside it.
LITELLM_PIN := 1.110.2
LITELLM_WHEEL := tests/.deps/.litellm-$(LITELLM_PIN)
# The real Claude Code, pinned in tests/claude/package-lock.json, that the tests run offline.
CLAUDE_CODE := tests/claude/node_modules/.installed
# GitHub's published GraphQL schema, pinned, that extract's PR query is validated against.
GITHUB_SCHEMA := tests/github-schema/node_modules/.installed
# secretlint and its recommended rules, pinned: with detect-secrets, the tests' secret scanners.
SECRET_SCANNERS := tests/secrets/node_modules/.installed
# Arize Phoenix and MLflow, the real OTLP backends of the otel tests, each in its own venv
# installed from its frozen requirements (tests/otel/requirements-*.txt).
OTEL_BACKENDS := tests/.venvs/phoenix/.installed tests/.venvs/mlflow/.installed
CLAUDE_CODE_VERSION ?=
DEMO_OUT ?= demo-output
# The dashboard inlines Chart.js when a local copy is found (after `make test`, the tests' own).
CHARTJS_COPY := tests/browser/node_modules/chart.js/dist/chart.umd.min.js

.PHONY: demo check test test-deps system-deps bench claude-transcripts

demo:
	@rm -rf "$(DEMO_OUT)" && mkdir -p "$(DEMO_OUT)"
	$(PYTHON) $(SCRIPT) --phase list --projects-dir $(SAMPLES) -o "$(DEMO_OUT)/sessions.txt"
	$(PYTHON) $(SCRIPT) --phase list --json --projects-dir $(SAMPLES) -o "$(DEMO_OUT)/sessions.json"
	$(PYTHON) $(SCRIPT) --phase stats --projects-dir $(SAMPLES) --session-id 00b11888 --skills-dir $(SKILLS) \
		--repo kagenti/kagenti --target pr --number 652 -o "$(DEMO_OUT)/stats-00b11888.json"
	$(PYTHON) $(SCRIPT) --phase mermaid --stats-file "$(DEMO_OUT)/stats-00b11888.json" --skills-dir $(SKILLS) \
		-o "$(DEMO_OUT)/workflows-00b11888.md"
	$(PYTHON) $(SCRIPT) --phase stats --projects-dir $(SAMPLES) --session-id a3f92bc1 \
		--repo kagenti/kagenti --target pr --number 652 -o "$(DEMO_OUT)/stats-a3f92bc1.json"
	$(PYTHON) $(SCRIPT) --phase stats --projects-dir $(SAMPLES) --session-id f7e01d4a \
		--repo demo/notes -o "$(DEMO_OUT)/stats-f7e01d4a.json"
	$(PYTHON) $(SCRIPT) --phase comment --dry-run --offline --stats-file "$(DEMO_OUT)/stats-00b11888.json" \
		--skills-dir $(SKILLS) -o "$(DEMO_OUT)/comment-00b11888.md"
	$(PYTHON) $(SCRIPT) --phase summary --dry-run --target pr --number 652 \
		--stats-file "$(DEMO_OUT)/stats-00b11888.json" --stats-file "$(DEMO_OUT)/stats-a3f92bc1.json" \
		-o "$(DEMO_OUT)/summary-pr-652.md"
	$(PYTHON) $(SCRIPT) --phase extract --source local --projects-dir $(SAMPLES) --skills-dir $(SKILLS) \
		--since 2025-01-01 --until 2026-12-31 --output-dir "$(DEMO_OUT)/analytics" \
		$(if $(wildcard $(CHARTJS_COPY)),--chartjs $(CHARTJS_COPY))
	@cat "$(DEMO_OUT)/sessions.txt"
	@echo
	@sed '/<details><summary>Summary Data/,$$d' "$(DEMO_OUT)/summary-pr-652.md"
	@echo "demo output written to $(DEMO_OUT)/ (sessions.txt, sessions.json, stats-*.json,"
	@echo "workflows-00b11888.md: annotated Mermaid diagrams, comment-00b11888.md and"
	@echo "summary-pr-652.md: the PR comments, rendered without posting, and analytics/:"
	@echo "analytics.csv, analytics.md, analytics.json and dashboard.html from the local transcripts)"

test-deps: system-deps $(BROWSER_DEPS) $(CLAUDE_CODE) $(GITHUB_SCHEMA) $(SECRET_SCANNERS) $(LITELLM_WHEEL) \
		$(OTEL_BACKENDS)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

# gh, openssl, cmark-gfm, chromium, node: installed with apt-get where it can, else the command to run
system-deps:
	@bash tests/install-system-deps.sh

$(LITELLM_WHEEL):
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--dest tests/.deps litellm==$(LITELLM_PIN)
	touch $@

# Mermaid and Chart.js for the browser tests, exactly as pinned in the lock file.
$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json | system-deps
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CLAUDE_CODE): tests/claude/package.json tests/claude/package-lock.json | system-deps
	cd tests/claude && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(GITHUB_SCHEMA): tests/github-schema/package.json tests/github-schema/package-lock.json | system-deps
	cd tests/github-schema && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SECRET_SCANNERS): tests/secrets/package.json tests/secrets/package-lock.json | system-deps
	cd tests/secrets && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# A server's venv, rebuilt from scratch when its requirements change.
tests/.venvs/%/.installed: tests/otel/requirements-%.txt
	rm -rf tests/.venvs/$*
	$(PYTHON) -m venv tests/.venvs/$*
	tests/.venvs/$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

# The tests' scripted Claude Code sessions, run with another release to see what it changed:
#   make claude-transcripts CLAUDE_CODE_VERSION=2.1.400   (the pinned one when left out)
claude-transcripts: test-deps
	$(PYTHON) tests/claude/regenerate.py --out claude-transcripts $(if $(CLAUDE_CODE_VERSION),--version $(CLAUDE_CODE_VERSION))

test: test-deps
	$(PYTHON) -m pytest -q tests

# The inner loop: every test that needs no program or package beyond pytest (tests/conftest.py
# tells them apart by what they use), one pytest process a core (tests/check.py); the real
# transcripts of ../shared when they are there.
check:
	@$(PYTHON) -c "import pytest" 2>/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check 'pytest>=8,<10'
	$(PYTHON) tests/check.py

# Speed and memory against ccusage on generated histories (100 MB and 1 GB by default; set
# BENCH_SIZES=100M for a quick look). Prints medians and ratios; never part of `make test`.
bench:
	$(PYTHON) tests/bench/run.py

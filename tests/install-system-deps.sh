#!/usr/bin/env bash
# The Debian packages the tests drive for real: gh against a fake GitHub over HTTPS (openssl makes
# its throw-away certificate), cmark-gfm to render comment bodies as GitHub would, chromium to
# render the Mermaid diagrams and the dashboard, node and npm for the pinned Mermaid and Chart.js,
# tmux for the one Claude Code scenario that needs a terminal.
# Used by `make test` and by .ci/run. Installs what is missing where it can (root with apt-get);
# elsewhere it stops and prints the one command to run.
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need make make
need git git
need python3 python3
need gh gh
need openssl openssl
need cmark-gfm cmark-gfm
need chromium chromium
need node nodejs
need npm npm
need tmux tmux          # `make claude-transcripts`: the `!` command scenario runs Claude Code in a terminal
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "the tests need ${missing[*]}; install them with:" >&2
echo "  sudo apt-get install -y ${missing[*]}" >&2
exit 1

#!/usr/bin/env bash
# Build the documentation site into site/ in strict mode (a broken link, a missing page or an
# unresolved API reference fails), or serve it with live reload:
#   scripts/docs.sh                 # -> site/index.html
#   scripts/docs.sh serve           # http://127.0.0.1:8000
#   scripts/docs.sh --site-dir DIR  # extra arguments go to mkdocs
# The strategy pictures (docs/img/strategies/) are committed; after changing a strategy's gallery
# settings, re-render them with: .venv/bin/python docs/_gen/strategy_pages.py
export NO_MKDOCS_2_WARNING=1  # mkdocs-material 9.7+ prints a banner about its successor
source "$(dirname "$0")/_env.sh"
install_project dev
if [ "${1:-}" = "serve" ]; then
    shift
    exec .venv/bin/python -m mkdocs serve "$@"
fi
exec .venv/bin/python -m mkdocs build --strict "$@"

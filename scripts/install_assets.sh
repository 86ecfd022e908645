#!/bin/sh
# Install the JavaScript and CSS that offline maps inline (Leaflet and the Leaflet plugins folium's
# templates link to), from the npm registry, into a cache directory outside the repository.
#
#   scripts/install_assets.sh            # into ${GIS_PLANNER_ASSETS:-~/.cache/gis-planner/assets}
#   scripts/install_assets.sh DIR        # into DIR (then export GIS_PLANNER_ASSETS=DIR)
#
# The versions are the ones folium 0.20 links to (folium/folium.py, folium/plugins/*.py); keep them
# in step with gis/_assets.py (_SOURCES).  Nothing here is ever committed.
set -eu

DIR="${1:-${GIS_PLANNER_ASSETS:-$HOME/.cache/gis-planner/assets}}"
mkdir -p "$DIR"
command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js (it ships npm)" >&2; exit 1; }

npm install --no-save --no-audit --no-fund --ignore-scripts --prefix "$DIR" \
    leaflet@1.9.3 \
    leaflet-search@2.9.7 \
    leaflet.fullscreen@3.0.0 \
    leaflet-measure@2.1.7 \
    leaflet-minimap@3.6.1 \
    jquery@3.7.1 \
    bootstrap@5.2.2 \
    @fortawesome/fontawesome-free@6.2.0 \
    leaflet.awesome-markers@2.0.5

echo "offline map assets installed in $DIR"

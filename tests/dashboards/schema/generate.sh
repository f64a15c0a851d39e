#!/usr/bin/env bash
# Regenerate the JSON Schemas in this folder from Grafana's own types (npm @grafana/schema), which
# ship as TypeScript only: ts-json-schema-generator turns them into JSON Schema (draft 07).
#   tests/dashboards/schema/generate.sh            # the versions below
#   GRAFANA_SCHEMA=13.3.0 tests/dashboards/schema/generate.sh
# Needs node and npm; works in a throwaway folder; writes only *.schema.json here. CI needs none of
# this: the generated files are committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
schema_version="${GRAFANA_SCHEMA:-13.2.3}"
generator_version="${TS_JSON_SCHEMA_GENERATOR:-2.10.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "@grafana/schema@$schema_version" "ts-json-schema-generator@$generator_version"
raw=node_modules/@grafana/schema/dist/types/raw
gen() {  # gen TYPES-FILE TYPE OUT
    npx --no-install ts-json-schema-generator --path "$1" --type "$2" --no-type-check -o "$here/$3"
}
gen "$raw/dashboard/x/types.gen.d.ts" Dashboard dashboard.schema.json
# the option schemas of the panel plugins the dashboards use (plugin id -> types folder)
for pair in stat:stat timeseries:timeseries table:table state-timeline:statetimeline bargauge:bargauge; do
    plugin="${pair%%:*}" folder="${pair##*:}"
    gen "$raw/composable/$folder/panelcfg/x/types.gen.d.ts" Options "panel-$plugin.options.schema.json"
    if grep -q '^export interface FieldConfig' "$raw/composable/$folder/panelcfg/x/types.gen.d.ts"; then
        gen "$raw/composable/$folder/panelcfg/x/types.gen.d.ts" FieldConfig "panel-$plugin.fieldconfig.schema.json"
    fi
done
printf '%s\n' "@grafana/schema $schema_version" "ts-json-schema-generator $generator_version" > "$here/VERSIONS"

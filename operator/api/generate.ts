// `npm run generate`: writes the CRD YAML and the TypeScript types from the schema.
import { writeFileSync } from 'node:fs';
import { CRD_PATH, TYPES_PATH, renderCrdYaml, renderTypes } from './codegen.js';

const CHART_CRD_PATH = 'charts/shardwarden/crds/shardwarden.io_discordbots.yaml';
writeFileSync(CRD_PATH, renderCrdYaml());
writeFileSync(CHART_CRD_PATH, renderCrdYaml());
writeFileSync(TYPES_PATH, renderTypes());
console.log(`wrote ${CRD_PATH}, ${CHART_CRD_PATH} and ${TYPES_PATH}`);

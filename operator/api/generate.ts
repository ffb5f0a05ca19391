// `npm run generate`: writes the CRD YAML and the TypeScript types from the schema.
import { writeFileSync } from 'node:fs';
import { CRD_PATH, TYPES_PATH, renderCrdYaml, renderTypes } from './codegen.js';

writeFileSync(CRD_PATH, renderCrdYaml());
writeFileSync(TYPES_PATH, renderTypes());
console.log(`wrote ${CRD_PATH} and ${TYPES_PATH}`);

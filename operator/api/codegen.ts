// Renders the CRD YAML and the TypeScript types from the schema in v1alpha1/schema.ts, so the
// two cannot drift: `npm run generate` writes them, tests/operator/api.test.ts checks them.
import { stringify } from 'yaml';
import { customResourceDefinition, specSchema, statusSchema, type Schema } from './v1alpha1/schema.js';

export const CRD_PATH = 'crds/shardwarden.io_discordbots.yaml';
export const TYPES_PATH = 'operator/api/v1alpha1/types.generated.ts';

export function renderCrdYaml(): string {
  return `# Generated from operator/api/v1alpha1/schema.ts by \`npm run generate\`; do not edit.\n${stringify(customResourceDefinition(), { lineWidth: 0 })}`;
}

function tsType(schema: Schema, indent: string): string {
  if (schema['x-kubernetes-preserve-unknown-fields']) return 'Record<string, unknown>';
  if (schema['x-kubernetes-int-or-string']) return 'number | string';
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const item = tsType(schema.items ?? {}, indent);
      return item.includes(' ') && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
    }
    case 'object': {
      if (!schema.properties) {
        const ap = schema.additionalProperties;
        return ap ? `Record<string, ${tsType(ap, indent)}>` : 'Record<string, unknown>';
      }
      const inner = `${indent}  `;
      const lines = Object.entries(schema.properties).map(([name, prop]) => {
        // The apiserver fills in defaults, so a defaulted field is always present when read.
        const present = schema.required?.includes(name) || prop.default !== undefined;
        const doc = prop.description ? `${inner}/** ${prop.description.replace(/\*\//g, '*\\/')} */\n` : '';
        return `${doc}${inner}${name}${present ? '' : '?'}: ${tsType(prop, inner)};`;
      });
      return `{\n${lines.join('\n')}\n${indent}}`;
    }
    default:
      return 'unknown';
  }
}

export function renderTypes(): string {
  return [
    '// Generated from schema.ts by `npm run generate`; do not edit.',
    '',
    `/** ${specSchema.description} */`,
    `export interface DiscordBotSpec ${tsType(specSchema, '')}`,
    '',
    `/** ${statusSchema.description} */`,
    `export interface DiscordBotStatus ${tsType(statusSchema, '')}`,
    '',
  ].join('\n');
}

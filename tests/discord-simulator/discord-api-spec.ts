// Discord's OpenAPI description of API v10 (./discord-api-spec/, see its README) as
// validators: an operation's response (status, declared headers, JSON body) and request body,
// and a component object such as GuildMemberResponse. JSON Schema 2020-12 (what OpenAPI 3.1
// uses) by Ajv, every $ref resolved against the one document.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Ajv2020, type ErrorObject, type Format, type ValidateFunction } from 'ajv/dist/2020.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the spec is untyped JSON */
type Json = any;

/** The spec's commit; docs/discord-simulator.md names it too. */
export const SPEC_COMMIT = '74fda0fad044407ea280043a03ffc9bc64c4e49e';

/**
 * Where Discord sends something other than its spec says. The ONE place such exceptions live:
 * each patches the spec before it is compiled, and docs/discord-simulator.md lists them.
 */
export const SPEC_EXCEPTIONS: {
  schema: string;
  why: string;
  patch(schemas: Json): void;
  /** What Discord sends that the unpatched spec refuses: proves the exception is still needed. */
  example: { schema: string; value: unknown };
}[] = [
  {
    schema: 'InnerErrors._errors[].code',
    why:
      'the per-field errors of a 50035 Invalid Form Body carry string codes ("BASE_TYPE_REQUIRED", ' +
      '"APPLICATION_COMMAND_INVALID_NAME"), as Discord documents and sends; the spec says integer',
    patch: (schemas) => {
      schemas.InnerErrors.properties._errors.items = {
        type: 'object',
        properties: { code: { type: 'string' }, message: { type: 'string' } },
        required: ['code', 'message'],
      };
    },
    example: {
      schema: 'ErrorResponse',
      value: {
        message: 'Invalid Form Body',
        code: 50035,
        errors: { name: { _errors: [{ code: 'BASE_TYPE_REQUIRED', message: 'This field is required' }] } },
      },
    },
  },
  {
    schema: 'ApplicationCommandUpdateRequest.default_member_permissions',
    why:
      'Discord documents the bit set as a string ("268435456") and accepts it; discord.js and this ' +
      'project send strings; the spec allows only an integer (responses carry a string either way)',
    patch: (schemas) => {
      schemas.ApplicationCommandUpdateRequest.properties.default_member_permissions = {
        oneOf: [
          schemas.ApplicationCommandUpdateRequest.properties.default_member_permissions,
          { type: 'string', pattern: '^[0-9]+$' },
        ],
      };
    },
    example: {
      schema: 'ApplicationCommandUpdateRequest',
      value: { name: 'gate', description: 'Gated roles', default_member_permissions: '268435456' },
    },
  },
  {
    schema: 'RatelimitedResponse.code',
    why:
      'a 429 body is {message, retry_after, global} and carries a code only for some limits ' +
      "(Discord's Rate Limits page shows it without one); the spec requires it",
    patch: (schemas) => {
      schemas.RatelimitedResponse.allOf[0] = {
        ...schemas.Error,
        required: ['message'],
      };
    },
    example: {
      schema: 'RatelimitedResponse',
      value: { message: 'You are being rate limited.', retry_after: 0.5, global: false },
    },
  },
];

const BASE = 'https://discord.com/api/v10/openapi.json';

const FORMATS: Record<string, Format> = {
  int32: { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 },
  int64: { type: 'number', validate: (n: number) => Number.isSafeInteger(n) },
  double: { type: 'number', validate: (n: number) => Number.isFinite(n) },
  snowflake: { type: 'string', validate: (s: string) => /^(0|[1-9][0-9]*)$/.test(s) },
  // A message nonce is an integer or a string; the union says which, the format adds nothing.
  nonce: true,
  'date-time': {
    type: 'string',
    validate: (s: string) =>
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !isNaN(Date.parse(s)),
  },
  uri: { type: 'string', validate: (s: string) => URL.canParse(s) },
};

export interface SpecOperation {
  /** `GET /guilds/{guild_id}` */
  name: string;
  operation: Json;
}

export class DiscordApiSpec {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  private constructor(private readonly spec: Json) {
    for (const [name, format] of Object.entries(FORMATS)) this.ajv.addFormat(name, format);
    this.ajv.addSchema({ $id: BASE, components: spec.components });
  }

  /** The spec with SPEC_EXCEPTIONS applied (`exceptions: false`: as published). */
  static load({ exceptions = true } = {}): DiscordApiSpec {
    const file = new URL('./discord-api-spec/openapi.json.gz', import.meta.url);
    const spec = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8'));
    if (exceptions) for (const exception of SPEC_EXCEPTIONS) exception.patch(spec.components.schemas);
    return new DiscordApiSpec(spec);
  }

  /**
   * The operation serving a simulator route template (`/guilds/:guild_id`): same segments,
   * parameters where the spec has parameters, whatever their names; a literal (`@me`) beats a
   * parameter (`{user_id}`).
   */
  operation(method: string, template: string): SpecOperation | undefined {
    const ours = template.split('/');
    let best: { path: string; literals: number } | undefined;
    for (const path of Object.keys(this.spec.paths)) {
      if (!this.spec.paths[path][method.toLowerCase()]) continue;
      const theirs = path.split('/');
      if (theirs.length !== ours.length) continue;
      const isParam = (segment: string) => /^\{.+\}$/.test(segment);
      const fits = theirs.every((s, i) =>
        ours[i]!.startsWith(':') ? isParam(s) : s === ours[i] || isParam(s),
      );
      const literals = theirs.filter((s, i) => s === ours[i]).length;
      if (fits && (!best || literals > best.literals)) best = { path, literals };
    }
    if (!best) return undefined;
    return {
      name: `${method} ${best.path}`,
      operation: this.spec.paths[best.path][method.toLowerCase()],
    };
  }

  /** Problems of one response against the operation: status, declared headers, JSON body. */
  checkResponse(
    op: SpecOperation,
    res: { status: number; headers: Headers; body: unknown; rawBody: string },
  ): string[] {
    const responses = op.operation.responses as Record<string, Json>;
    const key = [String(res.status), `${String(res.status)[0]}XX`, 'default'].find((k) => k in responses);
    if (!key) return [`${op.name}: status ${res.status} is not one of ${Object.keys(responses).join(', ')}`];
    const response = this.deref(responses[key]);
    const problems: string[] = [];
    for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
      const value = res.headers.get(name);
      const schema = this.deref(header).schema;
      if (value === null) problems.push(`${op.name} ${res.status}: header ${name} missing`);
      else
        problems.push(
          ...this.check(schema, headerValue(value, schema), `${op.name} ${res.status} header ${name}`),
        );
    }
    const json = response.content?.['application/json'];
    if (!json) {
      if (res.rawBody !== '')
        problems.push(`${op.name} ${res.status}: the spec declares no body, got ${res.rawBody}`);
      return problems;
    }
    if (!(res.headers.get('content-type') ?? '').startsWith('application/json'))
      problems.push(`${op.name} ${res.status}: content-type ${res.headers.get('content-type')}`);
    return [...problems, ...this.check(json.schema, res.body, `${op.name} ${res.status} body`)];
  }

  /** Problems of a JSON request body against the operation's request schema. */
  checkRequest(op: SpecOperation, body: unknown): string[] {
    const json = this.deref(op.operation.requestBody ?? {}).content?.['application/json'];
    if (body === undefined) return [];
    if (!json) return [`${op.name}: the spec takes no JSON body, the test sent one`];
    return this.check(json.schema, body, `${op.name} request body`);
  }

  /** Problems of an object against a component schema (`GuildMemberResponse`). */
  checkObject(schemaName: string, value: unknown, where: string): string[] {
    if (!this.spec.components.schemas[schemaName]) throw new Error(`no component schema ${schemaName}`);
    return this.check({ $ref: `#/components/schemas/${schemaName}` }, value, `${where} (${schemaName})`);
  }

  private check(schema: Json, value: unknown, where: string): string[] {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(rebase(schema));
      this.compiled.set(key, validate);
    }
    if (validate(value)) return [];
    return [`${where}: ${describe(validate.errors ?? [], value)}`];
  }

  /** Follows an OpenAPI (not schema) `$ref` such as `#/components/responses/ClientErrorResponse`. */
  private deref(node: Json): Json {
    let out = node;
    while (out?.$ref) {
      out = (out.$ref as string)
        .slice(2)
        .split('/')
        .reduce((n: Json, part) => n[part.replace(/~1/g, '/').replace(/~0/g, '~')], this.spec);
    }
    return out;
  }
}

/** Makes the spec's document-local `$ref`s point at the document Ajv holds. */
function rebase(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `${BASE}${v}` : rebase(v),
    ]),
  );
}

/** A header is text; its schema says integer, number or string. */
function headerValue(value: string, schema: Json): unknown {
  if (schema?.type === 'integer' || schema?.type === 'number')
    return value.trim() === '' ? value : Number(value);
  return value;
}

/** Ajv's errors with the offending value, shortest first (the deepest `oneOf` branch noise last). */
function describe(errors: ErrorObject[], root: unknown): string {
  const lines = errors
    .filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf')
    .map((e) => {
      const at = e.instancePath || '/';
      const value = e.instancePath
        .split('/')
        .slice(1)
        .reduce((v: Json, p) => v?.[p.replace(/~1/g, '/').replace(/~0/g, '~')], root);
      return `${at} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''} (value ${JSON.stringify(value)?.slice(0, 120)})`;
    });
  return [...new Set(lines)].slice(0, 12).join('; ');
}

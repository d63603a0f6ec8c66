/**
 * Writes `docs/configuration.md` and `docs/config.schema.json` from the config schema, so the
 * reference cannot drift from what `actiongate validate` accepts. `src/config/docs.test.ts` fails
 * when the committed files differ from what this renders.
 *
 * @example
 * npm run docs   # bun scripts/generate-docs.ts
 */
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { z } from "zod";
import { configSchema } from "../src/config/schema.ts";
import { DURATION_PATTERN, isDurationSchema, SIZE_PATTERN, size } from "../src/kit/units.ts";

export const MARKDOWN_PATH = "docs/configuration.md";
export const JSON_SCHEMA_PATH = "docs/config.schema.json";

/** The part of JSON Schema that zod emits for this config. */
interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  examples?: unknown[];
  [key: string]: unknown;
}

export interface RenderedDocs {
  readonly markdown: string;
  /** Pretty-printed, with a final newline, exactly as committed. */
  readonly jsonSchema: string;
}

/**
 * Renders both files; pure, so the docs test can compare them with what is committed. `schema` is
 * replaceable so tests can show that any target type (any tagged union) gets its own section.
 */
export function renderConfigDocs(schema: z.ZodType = configSchema): RenderedDocs {
  const json = configJsonSchema(schema);
  return { markdown: renderMarkdown(json), jsonSchema: `${JSON.stringify(editorSchema(json), null, 2)}\n` };
}

/** The config as operators write it (`io: "input"`: `10s`, not 10000), durations and sizes with their patterns. */
function configJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      if (isDurationSchema(ctx.zodSchema)) ctx.jsonSchema.pattern = DURATION_PATTERN;
      if (ctx.zodSchema === size) ctx.jsonSchema.pattern = SIZE_PATTERN;
      // zod leaves out the `examples` of a schema with transforms inside (they are output values to
      // it); here they are written as the operator writes them, so they are kept.
      const examples = z.globalRegistry.get(ctx.zodSchema)?.examples;
      if (Array.isArray(examples) && ctx.jsonSchema.examples === undefined) ctx.jsonSchema.examples = examples;
    },
  }) as JsonSchema;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema for editors

/** Any string holding a `${VAR}` reference; the value is only known once the environment is read. */
const INTERPOLATED: JsonSchema = {
  type: "string",
  pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}",
  description: "an environment variable reference (`${VAR}` or `${VAR:-default}`), read when the config is loaded",
};

function editorSchema(schema: JsonSchema): JsonSchema {
  const { $schema, description: _, ...rest } = schema;
  return {
    $schema,
    title: "actiongate configuration",
    description:
      "The YAML file read by `actiongate serve` and `actiongate validate`: verification, routes and their targets. Generated from the schema by `npm run docs`; see docs/configuration.md.",
    ...withInterpolation(rest),
  };
}

/**
 * `port: ${PORT:-8080}` is how the example config is written; an editor that only knew `integer`
 * would flag it. Wherever a value is not a free string, a `${VAR}` reference is allowed too.
 */
function withInterpolation(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (out.properties)
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([key, value]) => [key, withInterpolation(value)]),
    );
  if (out.items) out.items = withInterpolation(out.items);
  if (typeof out.additionalProperties === "object")
    out.additionalProperties = withInterpolation(out.additionalProperties);
  if (out.anyOf) out.anyOf = out.anyOf.map(withInterpolation);
  if (out.oneOf) out.oneOf = out.oneOf.map(withInterpolation);
  const constrained =
    out.type === "integer" ||
    out.type === "number" ||
    out.type === "boolean" ||
    out.enum !== undefined ||
    out.pattern !== undefined;
  if (!constrained || out.const !== undefined) return out;
  const { description, default: fallback, ...value } = out;
  return {
    ...(description !== undefined ? { description } : {}),
    ...(fallback !== undefined ? { default: fallback } : {}),
    anyOf: [value, INTERPOLATED],
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown reference

/** The option of a tagged union a section belongs to: `type: soap`. */
interface Variant {
  readonly tag: string;
  readonly value: string;
}

interface Section {
  /** Key path of the object, `[]` for list items: `routes[].target`; empty for the top level. */
  readonly path: string;
  /** Set inside one option of a tagged union, whose keys differ from the other options'. */
  readonly variant?: Variant;
  /** True for the union option's own section, where the tag key is listed. */
  readonly isVariantRoot?: boolean;
  readonly schema: JsonSchema;
}

const TOP_LEVEL = "Top level";

/** `routes[].target (type: soap)`, `routes[].target.basic_auth (type: soap)`, `server` */
function titleOf(path: string, variant: Variant | undefined): string {
  if (!path) return TOP_LEVEL;
  return variant ? `${path} (${variant.tag}: ${variant.value})` : path;
}

function keyPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** Each object that has its own keys becomes a section, found by walking the schema depth first. */
function collectSections(section: Section, sections: Section[]): Section[] {
  sections.push(section);
  for (const [key, property] of Object.entries(section.schema.properties ?? {})) {
    for (const child of childSections(property, keyPath(section.path, key), section.variant))
      collectSections(child, sections);
  }
  return sections;
}

/**
 * The sections a property opens: a mapping, a list of mappings, one per option of a tagged union,
 * or the mapping of a union that also takes a scalar (`proxy: <url>` or `proxy: {url, ...}`).
 */
function childSections(property: JsonSchema, path: string, variant: Variant | undefined): Section[] {
  const inherited = variant ? { variant } : {};
  if (property.properties) return [{ path, ...inherited, schema: property }];
  if (property.type === "array" && property.items?.properties)
    return [{ path: `${path}[]`, ...inherited, schema: property.items }];
  const options = property.anyOf ?? property.oneOf;
  const mappings = options?.filter((option) => option.properties) ?? [];
  if (mappings.length === 1 && taggedVariants(property).length === 0) {
    const { description: _, ...mapping } = mappings[0]!;
    const examples = property.examples ?? mapping.examples;
    return [
      {
        path,
        ...inherited,
        schema: { ...mapping, description: property.description ?? "", ...(examples ? { examples } : {}) },
      },
    ];
  }
  return taggedVariants(property).map(({ tag, value, schema }) => ({
    path,
    variant: { tag, value },
    isVariantRoot: true,
    schema,
  }));
}

/** The options of a discriminated union (`target`): each an object whose `tag` key is a constant. */
function taggedVariants(property: JsonSchema): { tag: string; value: string; schema: JsonSchema }[] {
  const options = property.oneOf ?? property.anyOf;
  if (!options?.every((option) => option.properties)) return [];
  const tag = Object.keys(options[0]!.properties!).find((key) =>
    options.every((option) => option.properties![key]?.const !== undefined),
  );
  if (!tag) return [];
  return options.map((schema) => ({ tag, value: String(schema.properties![tag]!.const), schema }));
}

/**
 * A section met twice (a scheme of a key that http and soap targets share, `routes[].target.auth
 * (type: basic)`) is written once; two different sections under one title would be a bug here.
 */
function uniqueSections(sections: Section[]): Section[] {
  const seen = new Map<string, Section>();
  return sections.filter((section) => {
    const title = titleOf(section.path, section.variant);
    const earlier = seen.get(title);
    if (!earlier) {
      seen.set(title, section);
      return true;
    }
    if (JSON.stringify(earlier.schema) !== JSON.stringify(section.schema))
      throw new Error(`two different sections are both titled "${title}"`);
    return false;
  });
}

/** A section's `examples` (zod `.meta({ examples })`) as YAML under the section's own key. */
function examplesOf(section: Section): string[] {
  const key = section.path.split(".").at(-1)?.replace(/\[\]$/, "");
  if (!section.schema.examples?.length || !key) return [];
  return section.schema.examples.flatMap((example) => [
    "Example:",
    "",
    "```yaml",
    stringify({ [key]: example }, { lineWidth: 0 }).trimEnd(),
    "```",
    "",
  ]);
}

function renderMarkdown(root: JsonSchema): string {
  const sections = uniqueSections(collectSections({ path: "", schema: root }, []));
  const out: string[] = [
    "<!-- Generated by `npm run docs` (scripts/generate-docs.ts) from src/config/schema.ts and the target modules. Do not edit by hand. -->",
    "",
    "# Configuration reference",
    "",
    "> This file is generated by `npm run docs` from the config schema and must not be edited by hand;",
    "> change the `.describe()` texts in `src/config/schema.ts` or in a target's module instead.",
    "> The same schema is written as JSON Schema to [`config.schema.json`](config.schema.json) for editors:",
    "> start a config file with `# yaml-language-server: $schema=./docs/config.schema.json` for completion and checks.",
    "",
    "actiongate reads one YAML file (`--config`, default `./config.yaml`, or `ACTIONGATE_CONFIG`).",
    "`actiongate validate --config <file>` checks it exactly as `serve` would and prints the problems it finds all at",
    "once, each as `file:line:col key.path: message` (a route is named too: `routes[4] (mapped).transform`); JSONata,",
    "key files and target URLs are checked once the structure is valid. Unknown keys are errors, so a misspelt key",
    'never goes unnoticed, and the nearest known key is suggested (`unknown key, did you mean "transform"?`). A YAML',
    "syntax error is one line too, at the line to change, with a hint for the usual causes (a tab, a key indented",
    "one space off, an unquoted `: ` in a value, a quote or `{` never closed).",
    "",
    "## Values",
    "",
    "- **Durations** are a number and a unit: `500ms`, `10s`, `5m`, `1h`, `1d` (decimals such as `1.5s` work).",
    "  A bare number is refused, because it would be unclear whether it means seconds or milliseconds.",
    "- **Sizes** are a number and a unit in binary multiples: `512kb` (524288 bytes), `1mb`, `100b`, `1gb`.",
    "- **Environment variables**: `${VAR}` is replaced by the variable's value anywhere in a value (never in a key);",
    "  `${VAR:-default}` gives a fallback used when the variable is unset or empty. A variable that is unset or",
    "  empty and has no default is a config error naming the variable and its line, never a silent empty string;",
    "  so is a reference that is not `${NAME}` or `${NAME:-default}` (`${ERP-TOKEN}`). `$${` stands for a literal",
    "  `${`. Keys that take a number or `true`/`false` read the variable's text as one (`port: ${PORT:-8080}`);",
    "  every other key keeps it as text (`X-Client-Id: ${CLIENT_ID}` keeps its leading zeros). `$NAME` without",
    "  braces (a `$` and a name in capitals) is refused in every value that is not JSONata, with the fix",
    "  (`Bearer $ERP_TOKEN` would otherwise be sent as that text); `$$NAME` writes the text `$NAME`. JSONata",
    "  expressions and the inside of `{{ }}` are left alone: there `$name` is JSONata's own.",
    "- **File paths** (`store.path`, `verification.public_key_file`, TLS files, `wsdl`, `envelope_template`) are",
    "  relative to the config file's folder, whatever the working directory; absolute paths are taken as they are.",
    "- **`{{ <JSONata> }}` placeholders** in `target.url`, in header values and in the target keys whose description",
    "  says so are evaluated for each call against the stripped payload",
    "  (`url: http://erp/api/contracts/{{ data.entity.contract_number }}`). Values placed in a URL are",
    "  percent-encoded, so they cannot change its host or path; a header value may not hold a line break. When a",
    "  placeholder has no value for a payload, nothing is sent and epilot gets a 400 naming the placeholder.",
    "- **JSONata expressions** (`transform`, `skip_when`, `response.*`) are compiled when the config is loaded, so a",
    "  syntax error is reported by `validate` at its own line and column inside the expression, not at the first call.",
    "",
    "## Sections",
    "",
    ...sections.map((section) => {
      const title = titleOf(section.path, section.variant);
      return `- [${title}](#${anchor(title)})`;
    }),
  ];
  for (const section of sections) {
    out.push("", `## ${titleOf(section.path, section.variant)}`, "");
    if (section.schema.description) out.push(inline(section.schema.description), "");
    out.push(...examplesOf(section));
    out.push("| key | type | default | description |", "| --- | --- | --- | --- |");
    const required = new Set(section.schema.required ?? []);
    const variant = section.variant;
    for (const [key, property] of Object.entries(section.schema.properties ?? {})) {
      const isTag = section.isVariantRoot && key === variant?.tag && !property.description;
      const description = isTag
        ? `${code(`${key}: ${variant.value}`)} selects the keys of this section.`
        : descriptionOf(property);
      const type = typeOf(property, keyPath(section.path, key), variant);
      out.push(`| ${code(key)} | ${type} | ${defaultOf(property, required.has(key))} | ${description} |`);
    }
  }
  return `${out.join("\n")}\n`;
}

/** The type column; `path` and `variant` name the section a mapping's link points to. */
function typeOf(schema: JsonSchema, path: string, variant?: Variant): string {
  const link = (target: string) => {
    const title = titleOf(target, variant);
    return `[${title}](#${anchor(title)})`;
  };
  const variants = taggedVariants(schema);
  if (variants.length > 0) {
    const links = variants.map(({ tag, value }) => `[${code(value)}](#${anchor(titleOf(path, { tag, value }))})`);
    return `mapping, by \`${variants[0]!.tag}\`: ${links.join(", ")}`;
  }
  if (schema.properties) return `mapping, see ${link(path)}`;
  if (schema.pattern === DURATION_PATTERN) return "duration";
  if (schema.pattern === SIZE_PATTERN) return "size";
  if (schema.const !== undefined) return code(String(schema.const));
  if (schema.enum) return `one of ${schema.enum.map((value) => code(String(value))).join(", ")}`;
  const options = schema.anyOf ?? schema.oneOf;
  if (options) {
    const flat = flatten(options);
    // `"1.1"` and `1.1` are one choice to whoever writes the YAML.
    const choices = flat.every((option) => option.enum || option.const !== undefined)
      ? flat.flatMap((option) => option.enum ?? [option.const])
      : undefined;
    if (choices) return `one of ${[...new Set(choices.map(String))].map(code).join(", ")}`;
    return either(flat.map((option) => typeOf(option, path, variant)));
  }
  switch (schema.type) {
    case "array": {
      if (schema.items?.properties) return `list of mappings, see ${link(`${path}[]`)}`;
      const items = schema.items?.anyOf ?? schema.items?.oneOf;
      if (items) return `list of ${either(items.map((item) => plural(typeOf(item, `${path}[]`, variant))))}`;
      return `list of ${plural(schema.items ? typeOf(schema.items, `${path}[]`, variant) : "any")}`;
    }
    case "object": {
      const values =
        typeof schema.additionalProperties === "object"
          ? typeOf(schema.additionalProperties, `${path}.*`, variant)
          : "any";
      return `mapping of ${plural(values)}`;
    }
    case "integer":
    case "number": {
      const noun = schema.type === "integer" ? "integer" : "number";
      // zod's .int() bounds every integer by the safe range; that is no rule an operator needs to read.
      const minimum = schema.minimum === Number.MIN_SAFE_INTEGER ? undefined : schema.minimum;
      const maximum = schema.maximum === Number.MAX_SAFE_INTEGER ? undefined : schema.maximum;
      if (minimum !== undefined && maximum !== undefined) return `${noun}, ${minimum} to ${maximum}`;
      if (minimum !== undefined) return `${noun}, at least ${minimum}`;
      if (maximum !== undefined) return `${noun}, at most ${maximum}`;
      return noun;
    }
    case "boolean":
      return "`true` or `false`";
    case undefined:
      return "any";
    default:
      return schema.type;
  }
}

/** A union of unions reads as one list of alternatives. */
function flatten(options: JsonSchema[]): JsonSchema[] {
  return options.flatMap((option) => {
    const nested = option.anyOf ?? option.oneOf;
    return nested && taggedVariants(option).length === 0 ? flatten(nested) : [option];
  });
}

/** `string, integer or list of strings` */
function either(types: string[]): string {
  const unique = [...new Set(types)];
  return unique.length === 1 ? unique[0]! : `${unique.slice(0, -1).join(", ")} or ${unique.at(-1)!}`;
}

function plural(noun: string): string {
  return /^(string|integer|number|duration|size)$/.test(noun) ? `${noun}s` : noun;
}

function defaultOf(schema: JsonSchema, required: boolean): string {
  if (required) return "required";
  if (schema.default === undefined) return "—";
  return code(typeof schema.default === "string" ? schema.default : JSON.stringify(schema.default));
}

function descriptionOf(schema: JsonSchema): string {
  const variants = taggedVariants(schema);
  const parts = [
    schema.description ??
      (variants.length > 0 ? `chosen by \`${variants[0]!.tag}\`; each kind has its own keys, below` : ""),
  ];
  if (variants.length === 0 && !schema.properties) {
    const pattern = schema.pattern ?? schema.items?.pattern;
    if (pattern && pattern !== DURATION_PATTERN && pattern !== SIZE_PATTERN) parts.push(`Must match ${code(pattern)}.`);
    if (schema.propertyNames?.pattern) parts.push(`Keys must match ${code(schema.propertyNames.pattern)}.`);
    if (schema.minItems === 1) parts.push("At least one.");
  }
  return parts
    .filter(Boolean)
    .map((part) => inline(part.endsWith(".") || part.endsWith(")") ? part : `${part}.`))
    .join(" ");
}

/** Text for a table cell: `<` outside code spans would be taken for HTML, `|` would end the cell. */
function inline(text: string): string {
  return text
    .replace(/\s*\n\s*/g, " ")
    .split(/(``[\s\S]*?``|`[^`]*`)/)
    .map((part, index) =>
      index % 2 === 1 ? part : part.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"),
    )
    .join("")
    .replace(/\|/g, "\\|");
}

/** A code span that survives backticks inside it. */
function code(text: string): string {
  const fence = text.includes("`") ? "``" : "`";
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : fence === "``" ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

if (import.meta.main) {
  const { markdown, jsonSchema } = renderConfigDocs();
  writeFileSync(new URL(`../${MARKDOWN_PATH}`, import.meta.url), markdown);
  writeFileSync(new URL(`../${JSON_SCHEMA_PATH}`, import.meta.url), jsonSchema);
  process.stdout.write(`wrote ${MARKDOWN_PATH} and ${JSON_SCHEMA_PATH}\n`);
}

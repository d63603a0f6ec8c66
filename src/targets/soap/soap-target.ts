import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { InvalidConfigValue } from "../../kit/config-errors.ts";
import { duration, envBoolean, envNumber } from "../../kit/units.ts";
import { ExpressionEvaluationError, ExpressionSyntaxError } from "../../transform/expression.ts";
import { TemplateValueError } from "../../transform/template.ts";
import { type CompiledRequestLine, compileRequestLine } from "../request-templates.ts";
import { createTransportTarget, transportKeys } from "../transport.ts";
import type { OutboundMessage, Target, TargetContext, TargetDefinition } from "../types.ts";
import {
  buildEnvelope,
  checkXmlCharacters,
  EnvelopeValueError,
  escapeXmlText,
  headerBlock,
  isXmlName,
  serializeXml,
  type XmlNode,
} from "./envelope.ts";
import { compileEnvelopeTemplate, type EnvelopeTemplate } from "./envelope-template.ts";
import { loggableFaultText } from "./fault-text.ts";
import { ANSWER_LIMITS, decodeXml, interpretAnswer } from "./response.ts";
import { ENVELOPE_NAMESPACE, type SoapVersion, soapHttpHeaders } from "./soap-version.ts";
import { passwordTextOf, type UsernameTokenOptions, usernameToken } from "./ws-security.ts";
import { loadWsdl, type Wsdl, WsdlError, type WsdlOperation } from "./wsdl.ts";
import { compileXmlTemplate, type XmlTextTemplate } from "./xml-template.ts";

const soapVersion = z
  .union([z.enum(["1.1", "1.2"]), z.literal(1.1), z.literal(1.2)])
  .transform((version) => String(version) as SoapVersion);
const noQuotesOrBreaks = /^[^"\r\n\0]*$/;

const soapHeaderSchema = z
  .strictObject({
    name: z.string().min(1).describe("element name of the header block (an XML name, no prefix)"),
    namespace: z
      .string()
      .min(1)
      .optional()
      .describe("namespace of the header block and its children; default: the target's `namespace`"),
    value: z
      .json()
      .default(null)
      .describe(
        "content: a mapping becomes child elements (nested mappings nest, lists repeat), a scalar becomes text; strings may hold `${ENV}` and `{{ <JSONata> }}` over the stripped payload, with `$body` the transform's result",
      ),
    must_understand: envBoolean(z.boolean())
      .prefault(false)
      .describe("mark the block mustUnderstand, so a server that does not know it must fail"),
  })
  .describe("A custom SOAP header block.");

export const soapTargetSchema = z
  .strictObject({
    type: z.literal("soap"),
    wsdl: z
      .string()
      .min(1)
      .optional()
      .describe(
        "WSDL 1.1 file, relative to the config file's folder (the local files it names in wsdl:import, xsd:import and xsd:include are read too, never a URL): fills in url, version, soap_action, namespace and element_form for `operation` where they are not set, and `validate` checks the operation exists",
      ),
    port: z
      .string()
      .min(1)
      .optional()
      .describe(
        "WSDL port to call when several offer the operation (for a binding that no wsdl:service port uses, the binding's name); default: the first (of `version`, when set)",
      ),
    url: z
      .string()
      .optional()
      .describe(
        "absolute http(s) URL of the service; `{{ <JSONata> }}` placeholders are percent-encoded; default: the WSDL port's address",
      ),
    version: soapVersion
      .optional()
      .describe(
        '"1.1" (text/xml, SOAPAction header) or "1.2" (application/soap+xml; action=...); default: the envelope template\'s, else the WSDL port\'s, else "1.1"',
      ),
    operation: z
      .string()
      .min(1)
      .describe(
        "the operation: with a WSDL, its name there; without, the body element the transform's result goes into",
      ),
    namespace: z
      .string()
      .min(1)
      .optional()
      .describe(
        "namespace of the body element; default: from the WSDL (required without one, unless envelope_template is set)",
      ),
    soap_action: z
      .string()
      .regex(noQuotesOrBreaks, "must not hold quotes or line breaks")
      .optional()
      .describe('the SOAP action (1.1: SOAPAction header, 1.2: action parameter); default: from the WSDL, else ""'),
    element_form: z
      .enum(["qualified", "unqualified"])
      .optional()
      .describe(
        'whether the body element\'s children are in `namespace` ("qualified") or in none; default: the WSDL schema\'s elementFormDefault, else "qualified"',
      ),
    envelope_template: z
      .string()
      .min(1)
      .optional()
      .describe(
        "file (relative to the config file's folder) holding the whole envelope, with `{{ <JSONata> }}` placeholders over the stripped payload (`$body` is the transform's result); values are XML-escaped; checked at load",
      ),
    soap_headers: z.array(soapHeaderSchema).default([]).describe("custom SOAP header blocks sent with every call"),
    basic_auth: z
      .strictObject({
        username: z
          .string()
          .min(1)
          .regex(/^[^:]*$/, "must not hold a colon")
          .describe("user name, usually `${ENV}`"),
        password: z.string().describe("password, usually `${ENV}`"),
      })
      .optional()
      .describe(
        "deprecated: the old spelling of `auth: { type: basic, username, password }`, which it means; set one of the two",
      ),
    ws_security: z
      .strictObject({
        username: z.string().min(1).describe("user name, usually `${ENV}`"),
        password: z.string().describe("password, usually `${ENV}`"),
        password_type: z
          .enum(["PasswordText", "PasswordDigest"])
          .default("PasswordText")
          .describe(
            "PasswordText sends the password; PasswordDigest sends Base64(SHA-1(nonce + created + password)) instead",
          ),
        nonce: envBoolean(z.boolean())
          .prefault(true)
          .describe("send a fresh Nonce and Created with PasswordText too (PasswordDigest always does)"),
        timestamp: duration
          .optional()
          .describe("add a wsu:Timestamp that expires after this duration (for servers that require one)"),
        must_understand: envBoolean(z.boolean()).prefault(true).describe("mark the Security header mustUnderstand"),
      })
      .optional()
      .describe("WS-Security UsernameToken header"),
    ...transportKeys,
    max_response_elements: envNumber(z.number().int().min(100).max(10_000_000))
      .prefault(ANSWER_LIMITS.maxNodes)
      .describe(
        "an answer with more elements and attributes (comments and CDATA sections count too) is not read: epilot gets 502, async delivery retries; bounds the memory and time one answer costs",
      ),
    max_response_depth: envNumber(z.number().int().min(8).max(1_000))
      .prefault(ANSWER_LIMITS.maxDepth)
      .describe(
        "an answer whose elements nest deeper (the Envelope is level 1) is not read: epilot gets 502, async delivery retries",
      ),
  })
  .describe(
    "A SOAP 1.1 or 1.2 service: the transform's result becomes the operation's body element, or fills an envelope template.",
  );

export type SoapTargetConfig = z.output<typeof soapTargetSchema>;

/** Everything a call needs, settled at load from the config, the WSDL and the template. */
interface ResolvedSoapCall {
  readonly url: string;
  readonly version: SoapVersion;
  readonly soapAction: string;
  /** Undefined with an envelope template, which holds its own body. */
  readonly body?: { localName: string; namespace: string; elementForm: "qualified" | "unqualified" };
  readonly template?: EnvelopeTemplate;
}

/**
 * Calls a SOAP service: builds the envelope (or fills the operator's template), adds header blocks
 * and WS-Security, sends it through the target's HTTP client with one deadline, and reads the answer:
 * the Body as JSON for `response.*`, a SOAP Fault (1.1 or 1.2, on any HTTP status) as a rejection
 * whose reason carries the fault code and string.
 *
 * @example
 * const target = createSoapTarget(soapTargetSchema.parse({ type: "soap", wsdl: "./crm.wsdl", operation: "CreateCustomer" }), context);
 * await target.deliver(message); // { kind: "delivered", response: { status: 200, body: { CreateCustomerResponse: {...} } } }
 */
export function createSoapTarget(config: SoapTargetConfig, context: TargetContext): Target {
  if (config.basic_auth && config.auth)
    throw new InvalidConfigValue("is the old spelling of auth: { type: basic }; set auth only", ["basic_auth"]);
  if (config.basic_auth)
    context.logger.warn("soap target: basic_auth is deprecated; write auth: { type: basic, username, password }", {
      operation: config.operation,
    });
  const call = resolveCall(config, context.configDir);
  const renderEnvelope = compileEnvelope(config, call);
  const answerLimits = { maxNodes: config.max_response_elements, maxDepth: config.max_response_depth };
  return createTransportTarget({
    type: "soap",
    config,
    context,
    method: "POST",
    url: call.url,
    // content-type and SOAPAction follow version and soap_action; a password is a secret, never a template.
    ownedHeaders: soapHttpHeaders(call.version, call.soapAction),
    auth: config.basic_auth ? { type: "basic", ...config.basic_auth } : config.auth,
    reservedConfigHeaders: {
      "content-type": "is set by the SOAP target from version and soap_action",
      soapaction: "is set by the SOAP target from version and soap_action",
      ...(config.basic_auth ? { authorization: "set basic_auth or an Authorization header, not both" } : {}),
    },
    details: { operation: config.operation, ...(call.soapAction !== "" ? { soap_action: call.soapAction } : {}) },
    compileRequestLine: (url, headers) => compileUrl(config, url, headers),
    async body(message) {
      const envelope = await renderEnvelope(message);
      return envelope.ok ? { ok: true, body: envelope.xml, secretTexts: envelope.secretTexts } : envelope;
    },
    interpret(result, message) {
      return interpretAnswer(result.status, result.headers, decodeXml(result.body, result.headers["content-type"]), {
        limits: answerLimits,
        // The whole fault for the operator's log (credentials out); epilot gets a short, redacted form.
        onFault: (fault) =>
          context.logger.warn("SOAP fault", {
            webhook_id: message.webhookId,
            target_status: result.status,
            fault_code: fault.code,
            ...(fault.subcode ? { fault_subcode: fault.subcode } : {}),
            fault_string: loggableFaultText(fault.text),
          }),
      });
    },
  });
}

/**
 * Compiles what goes into the envelope (header blocks, WS-Security, body or template) at load;
 * the result renders the envelope for one call, or says why this payload cannot be sent.
 */
function compileEnvelope(
  config: SoapTargetConfig,
  call: ResolvedSoapCall,
): (
  message: OutboundMessage,
) => Promise<{ ok: true; xml: string; secretTexts: string[] } | { ok: false; reason: string }> {
  const envelopeNamespace = call.template?.envelopeNamespace ?? ENVELOPE_NAMESPACE[call.version];
  const soapHeaders = compileSoapHeaders(config, call, envelopeNamespace);
  const security = config.ws_security;
  if (security) {
    for (const key of ["username", "password"] as const) {
      try {
        checkXmlCharacters(security[key]);
      } catch (error) {
        throw new InvalidConfigValue((error as Error).message, ["ws_security", key]);
      }
    }
  }
  const tokenOptions: UsernameTokenOptions | undefined = security && {
    username: security.username,
    password: security.password,
    passwordType: security.password_type,
    nonce: security.nonce,
    ...(security.timestamp !== undefined ? { timestampTtlMs: security.timestamp } : {}),
    mustUnderstand: security.must_understand,
    envelopeNamespace,
  };
  // PasswordText writes the password itself, escaped once here; a digest is base64, new every call.
  const writtenPassword = security && security.password_type === "PasswordText" ? escapeXmlText(security.password) : "";

  return async (message) => {
    try {
      const blocks = await soapHeaders(message);
      const secretTexts: string[] = [];
      if (tokenOptions) {
        // A fresh nonce and time for every call.
        const token = usernameToken(tokenOptions);
        blocks.push(token);
        const password = writtenPassword || passwordTextOf(token);
        if (password) secretTexts.push(password);
      }
      const xml = call.template
        ? await call.template.render(message.payload, blocks.length ? serializeXml(blocks) : "", { body: message.body })
        : buildEnvelope({ version: call.version, body: call.body!, content: message.body, headers: blocks });
      return { ok: true, xml, secretTexts };
    } catch (error) {
      if (error instanceof TemplateValueError || error instanceof EnvelopeValueError)
        return { ok: false, reason: error.message };
      if (error instanceof ExpressionEvaluationError)
        return { ok: false, reason: `a {{ }} placeholder failed${error.code ? ` (JSONata ${error.code})` : ""}` };
      throw error;
    }
  };
}

/**
 * Settles url, version, action and body element. Keys set in the config win; the WSDL fills what
 * they leave open; the template (when set) carries its own body. Anything the WSDL cannot give is a
 * config error that names the key to set.
 */
function resolveCall(config: SoapTargetConfig, configDir: string): ResolvedSoapCall {
  if (config.port !== undefined && config.wsdl === undefined)
    throw new InvalidConfigValue("is only read together with wsdl", ["port"]);
  const fromWsdl = config.wsdl !== undefined ? wsdlOperation(config, configDir) : undefined;
  const template =
    config.envelope_template !== undefined ? loadTemplate(config.envelope_template, configDir) : undefined;
  const file = config.wsdl!;

  if (template && config.version !== undefined && config.version !== template.version) {
    throw new InvalidConfigValue(
      `is ${config.version} but the envelope template is a SOAP ${template.version} envelope`,
      ["version"],
    );
  }
  if (template && fromWsdl && config.version === undefined && fromWsdl.version !== template.version) {
    throw new InvalidConfigValue(
      `is a SOAP ${template.version} envelope but WSDL port ${fromWsdl.port} is SOAP ${fromWsdl.version}; set version or port`,
      ["envelope_template"],
    );
  }
  const version = config.version ?? template?.version ?? fromWsdl?.version ?? "1.1";

  const url = config.url ?? fromWsdl?.url;
  if (url === undefined) {
    throw new InvalidConfigValue(
      !fromWsdl
        ? "is required (or set wsdl to read it from)"
        : fromWsdl.service === undefined
          ? `is required: ${file} has no address for ${config.operation} (binding ${fromWsdl.binding} is in no wsdl:service port)`
          : `is required: WSDL port ${fromWsdl.port} has no address`,
      ["url"],
    );
  }
  const soapAction = config.soap_action ?? fromWsdl?.soapAction ?? "";
  if (!noQuotesOrBreaks.test(soapAction))
    throw new InvalidConfigValue("the WSDL's soapAction holds quotes or line breaks; set soap_action", ["wsdl"]);
  if (template) return { url, version, soapAction, template };

  if (fromWsdl?.use === "encoded") {
    throw new InvalidConfigValue(
      `operation "${config.operation}" is ${fromWsdl.style}/encoded in ${file} (SOAP encoding: xsi:type on every value, SOAP-ENC arrays), which actiongate does not write from a transform; send it with envelope_template, the exact document with the types the service expects`,
      ["operation"],
    );
  }
  if (fromWsdl?.unsupported !== undefined) {
    throw new InvalidConfigValue(
      `${file}: operation "${config.operation}": ${fromWsdl.unsupported}; send it with envelope_template`,
      ["wsdl"],
    );
  }
  const namespace = config.namespace ?? fromWsdl?.namespace;
  if (namespace === undefined) {
    if (fromWsdl?.missing !== undefined) {
      throw new InvalidConfigValue(
        `${file}: operation "${config.operation}" has no body element: ${fromWsdl.missing}; set namespace to send <${config.operation}> in it, or envelope_template`,
        ["wsdl"],
      );
    }
    throw new InvalidConfigValue("is required (or set wsdl to read it from)", ["namespace"]);
  }
  const localName = fromWsdl?.element ?? config.operation;
  if (!isXmlName(localName))
    throw new InvalidConfigValue("must be an XML element name (letters, digits, `_`, `-`, `.`; no prefix)", [
      "operation",
    ]);
  if (config.element_form === undefined && fromWsdl?.formUnknown !== undefined)
    throw new InvalidConfigValue(`${file}: ${fromWsdl.formUnknown}`, ["wsdl"]);
  const elementForm = config.element_form ?? fromWsdl?.elementForm ?? "qualified";
  return { url, version, soapAction, body: { localName, namespace, elementForm } };
}

/** The WSDL's description of `operation` through the port that `port` and `version` pick; every WSDL problem is reported at `wsdl`. */
function wsdlOperation(config: SoapTargetConfig, configDir: string): WsdlOperation {
  const file = config.wsdl!;
  const path = resolve(configDir, file);
  let wsdl: Wsdl;
  let candidates: WsdlOperation[];
  try {
    wsdl = loadWsdl(path, (imported) =>
      imported === path ? readConfigFile(file, configDir, ["wsdl"]) : readFileSync(imported, "utf8"),
    );
    candidates = wsdl.lookup(config.operation);
  } catch (error) {
    if (error instanceof WsdlError) throw new InvalidConfigValue(`${file}: ${error.message}`, ["wsdl"]);
    throw error;
  }
  if (candidates.length === 0) {
    throw new InvalidConfigValue(
      `operation "${config.operation}" is not in ${file}; it has: ${wsdl.describeOperations()}`,
      ["operation"],
    );
  }
  let matching = candidates;
  if (config.port !== undefined) {
    matching = matching.filter((candidate) => candidate.port === config.port);
    if (matching.length === 0) {
      const ports = [...new Set(candidates.map((candidate) => candidate.port))].join(", ");
      throw new InvalidConfigValue(
        `no port "${config.port}" in ${file} offers ${config.operation}; these do: ${ports}`,
        ["port"],
      );
    }
  }
  if (config.version !== undefined) {
    const ofVersion = matching.filter((candidate) => candidate.version === config.version);
    if (ofVersion.length === 0) {
      const ports = matching.map((candidate) => `${candidate.port} (SOAP ${candidate.version})`).join(", ");
      throw new InvalidConfigValue(
        `${file} has no SOAP ${config.version} port for ${config.operation}; it has: ${ports}`,
        ["version"],
      );
    }
    matching = ofVersion;
  }
  return matching[0]!;
}

function loadTemplate(file: string, configDir: string): EnvelopeTemplate {
  return compileEnvelopeTemplate(readConfigFile(file, configDir, ["envelope_template"]), file);
}

function readConfigFile(file: string, configDir: string, path: PropertyKey[]): string {
  try {
    return readFileSync(resolve(configDir, file), "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new InvalidConfigValue(
      code === "ENOENT" ? `file not found: ${file}` : `cannot read ${file} (${code ?? "error"})`,
      path,
    );
  }
}

function compileUrl(config: SoapTargetConfig, url: string, headers: Record<string, string>): CompiledRequestLine {
  try {
    return compileRequestLine(url, headers);
  } catch (error) {
    // A bad address read from the WSDL is the WSDL's problem, not a key the operator wrote.
    if (error instanceof InvalidConfigValue && config.url === undefined && error.path[0] === "url") {
      throw new InvalidConfigValue(`the WSDL's address ${JSON.stringify(url)} ${error.message}; set url`, ["wsdl"]);
    }
    throw error;
  }
}

type HeaderValue =
  | XmlTextTemplate
  | null
  | number
  | boolean
  | readonly HeaderValue[]
  | { readonly [key: string]: HeaderValue };

/** Compiles `soap_headers` at load; the result renders the blocks for one call. */
function compileSoapHeaders(
  config: SoapTargetConfig,
  call: ResolvedSoapCall,
  envelopeNamespace: string,
): (message: OutboundMessage) => Promise<XmlNode[]> {
  const blocks = config.soap_headers.map((header, index) => {
    const path = ["soap_headers", index];
    if (!isXmlName(header.name))
      throw new InvalidConfigValue("must be an XML element name (no prefix)", [...path, "name"]);
    const namespace = header.namespace ?? config.namespace ?? call.body?.namespace;
    if (namespace === undefined)
      throw new InvalidConfigValue("is required when the target has no namespace", [...path, "namespace"]);
    return { header, namespace, prefix: `h${index}`, value: compileHeaderValue(header.value, [...path, "value"]) };
  });
  return async (message) => {
    const out: XmlNode[] = [];
    for (const block of blocks) {
      const value = await renderHeaderValue(block.value, message);
      out.push(
        headerBlock({
          localName: block.header.name,
          namespace: block.namespace,
          prefix: block.prefix,
          value,
          mustUnderstand: block.header.must_understand,
          envelopeNamespace,
        }),
      );
    }
    return out;
  };
}

function compileHeaderValue(value: unknown, path: PropertyKey[]): HeaderValue {
  if (typeof value === "string") {
    try {
      return compileXmlTemplate(value, (text) => text);
    } catch (error) {
      if (error instanceof ExpressionSyntaxError)
        throw new InvalidConfigValue(`invalid {{ }} expression: ${error.message}`, path);
      throw error;
    }
  }
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map((item, index) => compileHeaderValue(item, [...path, index]));
  const out: Record<string, HeaderValue> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (!isXmlName(key)) throw new InvalidConfigValue("is not a valid XML element name", [...path, key]);
    out[key] = compileHeaderValue(inner, [...path, key]);
  }
  return out;
}

async function renderHeaderValue(value: HeaderValue, message: OutboundMessage): Promise<unknown> {
  if (value === null || typeof value !== "object") return value;
  if (isTemplate(value)) return value.render(message.payload, { body: message.body });
  if (Array.isArray(value)) return Promise.all(value.map((item) => renderHeaderValue(item, message)));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = await renderHeaderValue(inner as HeaderValue, message);
  return out;
}

function isTemplate(value: object): value is XmlTextTemplate {
  return typeof (value as XmlTextTemplate).render === "function";
}

export const soapTarget: TargetDefinition<typeof soapTargetSchema> = {
  type: "soap",
  schema: soapTargetSchema,
  create: createSoapTarget,
};

import type { LocalRunResult } from "../gateway/local-run.ts";
import { isRecord } from "../kit/records.ts";
import { readSoapAnswer } from "../targets/soap/response.ts";
import type { RouteTestExpectation } from "./route-test-file.ts";

/** How a difference quotes a value: JSON, credentials as `***`. */
export type Quote = (value: unknown) => string;

/**
 * What differs between a test's `expect` and what the call did, one line each
 * (`request.body.contract: expected "2026-0042", got "2026-0043"`); empty when the test passes.
 * Objects match as subsets (every given key, deeply), arrays and scalars exactly, header names
 * without regard to case. `request: null` means nothing was sent. For a SOAP target, `body` is the
 * envelope text (exactly) and `soap_body` the operation element's content, whose text values
 * match the text of a number or boolean given (XML has no types).
 *
 * @example
 * compareExpectation({ answer: { status: 200 } }, result, JSON.stringify); // [] or ["answer.status: expected 200, got 502"]
 */
export function compareExpectation(expect: RouteTestExpectation, result: LocalRunResult, quote: Quote): string[] {
  const differences: string[] = [];
  const differ = (path: string, expected: unknown, got: string) =>
    differences.push(`${path}: expected ${quote(expected)}, got ${got}`);

  if (expect.route !== undefined && expect.route !== result.route) differ("route", expect.route, quote(result.route));
  if (expect.skipped !== undefined && expect.skipped !== result.skipped)
    differ("skipped", expect.skipped, quote(result.skipped));

  if (expect.request === null && result.request) {
    differences.push(`request: expected nothing sent, got ${result.request.method} ${quote(result.request.url.href)}`);
  } else if (expect.request && !result.request) {
    differences.push("request: expected a request, got nothing sent");
  } else if (expect.request && result.request) {
    const expected = expect.request;
    const request = result.request;
    if (expected.method !== undefined && expected.method !== request.method)
      differ("request.method", expected.method, quote(request.method));
    if (expected.url !== undefined && normalizedUrl(expected.url) !== request.url.href)
      differ("request.url", expected.url, quote(request.url.href));
    for (const [name, value] of Object.entries(expected.headers ?? {})) {
      const got = request.headers[name.toLowerCase()];
      if (got !== value)
        differ(`request.headers.${name.toLowerCase()}`, value, got === undefined ? "none" : quote(got));
    }
    const soap = result.targetType === "soap";
    if (expected.body !== undefined) {
      if (soap || request.body === undefined) {
        if (typeof expected.body !== "string" || expected.body !== request.body)
          differences.push(textDifference("request.body", expected.body, request.body, quote));
      } else {
        subset("request.body", expected.body, parseJson(request.body), false, differ, quote);
      }
    }
    if (expected.soap_body !== undefined) {
      if (!soap) differences.push("request.soap_body: only a SOAP target's request has one; use body");
      else subset("request.soap_body", expected.soap_body, operationContent(request.body), true, differ, quote);
    }
  }

  if (expect.answer) {
    if (expect.answer.status !== undefined && expect.answer.status !== result.answer.status)
      differ("answer.status", expect.answer.status, quote(result.answer.status));
    if (expect.answer.body !== undefined)
      subset("answer.body", expect.answer.body, result.answer.body, false, differ, quote);
  }
  return differences;
}

/**
 * Objects as subsets, deeply; arrays and scalars exactly. With `asText`, a scalar expected matches
 * a string holding its text (SOAP values are text).
 */
function subset(
  path: string,
  expected: unknown,
  actual: unknown,
  asText: boolean,
  differ: (path: string, expected: unknown, got: string) => void,
  quote: Quote,
): void {
  if (isRecord(expected)) {
    if (!isRecord(actual)) {
      differ(path, expected, quote(actual));
      return;
    }
    for (const [key, value] of Object.entries(expected)) {
      const inner = `${path}.${key}`;
      if (!Object.hasOwn(actual, key)) differ(inner, value, "nothing (no such key)");
      else subset(inner, value, actual[key], asText, differ, quote);
    }
    return;
  }
  if (!equalExactly(expected, actual, asText)) differ(path, expected, quote(actual));
}

function equalExactly(expected: unknown, actual: unknown, asText: boolean): boolean {
  if (asText && typeof actual === "string" && (typeof expected === "number" || typeof expected === "boolean"))
    return String(expected) === actual;
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((item, index) => equalExactly(item, actual[index], asText))
    );
  }
  if (isRecord(expected)) {
    if (!isRecord(actual)) return false;
    const keys = Object.keys(expected);
    return (
      keys.length === Object.keys(actual).length &&
      keys.every((key) => Object.hasOwn(actual, key) && equalExactly(expected[key], actual[key], asText))
    );
  }
  return Object.is(expected, actual);
}

/**
 * Two texts that should be equal: short ones quoted whole, long ones (an envelope) around the
 * first character where they part.
 */
function textDifference(path: string, expected: unknown, actual: string | undefined, quote: Quote): string {
  if (actual === undefined) return `${path}: expected ${quote(expected)}, got no body`;
  if (typeof expected !== "string" || (expected.length <= 120 && actual.length <= 120))
    return `${path}: expected ${quote(expected)}, got ${quote(actual)}`;
  let at = 0;
  while (at < expected.length && expected[at] === actual[at]) at++;
  const around = (text: string) => `${at > 30 ? "..." : ""}${text.slice(Math.max(0, at - 30), at + 50)}`;
  return `${path}: differs from character ${at + 1}: expected ${quote(around(expected))}, got ${quote(around(actual))}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The content of the first element in a request envelope's Body (the operation element), as JSON. */
function operationContent(envelope: string | undefined): unknown {
  if (envelope === undefined) return undefined;
  const read = readSoapAnswer(envelope);
  if (read.kind !== "envelope") return undefined;
  const [first] = Object.values(read.body);
  return first;
}

function normalizedUrl(url: string): string {
  try {
    return new URL(url).href;
  } catch {
    return url;
  }
}

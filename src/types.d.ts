/**
 * `JSON.parse` and `Response.json()` give `unknown`, not `any`: an `any` is assignable to every type,
 * so `const call: VerifiedCall = JSON.parse(text)` would compile. With `unknown` each parsed value is
 * checked or cast where it is read, and a cast to a nominal type is refused by test/architecture.
 * (Interfaces merge, and the overloads declared here come first.)
 */
interface JSON {
  parse(text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown): unknown;
}

interface Body {
  json(): Promise<unknown>;
}

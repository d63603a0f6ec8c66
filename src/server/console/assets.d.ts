// The console's files, imported as text (`with { type: "text" }`): Bun embeds them in the compiled
// binary and Deno reads them the same way, so the page needs nothing beside the binary. (`*.html` is
// declared by bun-types as an HTML bundle, which `type: "text"` does not make; console-page.ts reads it
// with String().)
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*.browser.js" {
  const text: string;
  export default text;
}

import type { Hono } from "hono";
import script from "./console.browser.js" with { type: "text" };
import style from "./console.css" with { type: "text" };
import page from "./console.html" with { type: "text" };

/** The page's text (bun-types calls an .html import an HTML bundle; imported as text it is a string). */
const html = String(page);

/**
 * What the browser may do with the console: its own script, style and API only (no inline code, no
 * other origin, no frames, no forms that post anywhere), and nothing is cached or sent as referrer.
 */
const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
} as const;

/**
 * Serves the console on the admin listener: `GET /` (the page), `/console.css` and `/console.js`,
 * all three held in the binary. The page holds no data; it reads the admin API with the token the
 * operator gives it, so it is served without one.
 *
 * @example
 * serveConsole(adminApp); // GET http://127.0.0.1:9090/#token=... opens it
 */
export function serveConsole(app: Hono): void {
  app.get("/", (c) => c.body(html, 200, { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" }));
  app.get("/console.css", (c) => c.body(style, 200, { ...PAGE_HEADERS, "content-type": "text/css; charset=utf-8" }));
  app.get("/console.js", (c) =>
    c.body(script, 200, { ...PAGE_HEADERS, "content-type": "text/javascript; charset=utf-8" }),
  );
}

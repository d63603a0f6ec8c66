import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the legacy system received it. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Parsed when the body is JSON, undefined otherwise. */
  json: any;
}

export interface ScriptedAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string | object;
  /** Wait this long before answering (a slow legacy system). */
  delayMs?: number;
  /** Drop the connection without answering. */
  destroy?: boolean;
}

export type Responder = (request: RecordedRequest) => ScriptedAnswer | Promise<ScriptedAnswer>;

export interface RecordingServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Changes how the server answers from now on (a target that fails on command). */
  respondWith(responder: Responder | ScriptedAnswer): void;
  close(): Promise<void>;
}

/**
 * A real HTTP server on 127.0.0.1 standing in for a legacy system: records every request and
 * answers as scripted (200 `{"ok":true}` by default).
 */
export async function startRecordingServer(
  initial: Responder | ScriptedAnswer = {},
  port = 0,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  let responder: Responder = toResponder(initial);
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    let json: unknown;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const recorded: RecordedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body,
      json,
    };
    requests.push(recorded);
    const answer = await responder(recorded);
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (answer.destroy) {
      req.socket.destroy();
      return;
    }
    const payload =
      answer.body === undefined
        ? JSON.stringify({ ok: true })
        : typeof answer.body === "string"
          ? answer.body
          : JSON.stringify(answer.body);
    const contentType = typeof answer.body === "string" ? "text/plain" : "application/json";
    res.writeHead(answer.status ?? 200, { "content-type": contentType, ...answer.headers });
    res.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    requests,
    respondWith(next) {
      responder = toResponder(next);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function toResponder(value: Responder | ScriptedAnswer): Responder {
  return typeof value === "function" ? value : () => value;
}

/** A port on 127.0.0.1 that nothing listens on (a legacy system that is down). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

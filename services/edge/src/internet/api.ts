/**
 * The emulated internet's HTTP API, served as api.example.com (203.0.113.10): what the guide's
 * "Pod Accesses External Service" flow reaches. The answers show what the outside saw of the
 * request (its source address above all), so a learner can tell whether traffic was NATed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds to wait before answering (the /delay endpoint). */
  delayMs?: number;
}

const json = (status: number, value: unknown): ApiAnswer => ({
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value, null, 2) + "\n",
});

/** The answer to one request, as a function of what arrived. */
export function answerApi(req: {
  method: string;
  url: string;
  headers: Record<string, unknown>;
  remoteAddress: string;
}): ApiAnswer {
  let url: URL;
  try {
    url = new URL(req.url, "http://api.example.com");
  } catch {
    return json(400, { error: "malformed request target" });
  }
  const path = url.pathname;
  if (path === "/" || path === "/api" || path === "/api/") {
    return json(200, {
      service: "api.example.com",
      message: "hello from the emulated internet",
      clientIP: req.remoteAddress,
    });
  }
  if (path === "/ip") return json(200, { origin: req.remoteAddress });
  if (path === "/headers") return json(200, { headers: req.headers });
  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status) {
    const code = Number(status[1]);
    return code >= 200 && code <= 599
      ? json(code, { status: code })
      : json(400, { error: `no status ${code}` });
  }
  const delay = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(path);
  if (delay) {
    const seconds = Math.min(Number(delay[1]), 30);
    return { ...json(200, { delayed: seconds }), delayMs: seconds * 1000 };
  }
  return json(404, { error: `no route ${path}` });
}

export function createApiServer(): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const answer = answerApi({
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers: req.headers,
      remoteAddress: (req.socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
    });
    const send = () => {
      res.writeHead(answer.status, { ...answer.headers, server: "api.example.com" });
      res.end(answer.body);
    };
    if (answer.delayMs) setTimeout(send, answer.delayMs);
    else send();
  });
}

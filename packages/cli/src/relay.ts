/**
 * A byte relay between a TCP port and a unix socket (either way round). The native lab
 * publishes the API server and the ingress on the host's 127.0.0.1 this way: a unix socket
 * path is visible from every network namespace, while a TCP port belongs to one.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { unlinkSync } from "node:fs";

export type Endpoint = { host: string; port: number } | { path: string };

/** Parses `tcp:HOST:PORT` or `unix:PATH`. */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path) throw new Error(`"${text}": a unix endpoint needs a path, e.g. unix:/run/klab/api.sock`);
    return { path };
  }
  const m = /^tcp:(.+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 0 || port > 65535) {
    throw new Error(`"${text}" is not an endpoint: use tcp:HOST:PORT or unix:PATH`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export function endpointText(e: Endpoint): string {
  return "path" in e ? `unix:${e.path}` : `tcp:${e.host}:${e.port}`;
}

function connect(e: Endpoint): Socket {
  return "path" in e ? createConnection(e.path) : createConnection(e.port, e.host);
}

export interface Relay {
  server: Server;
  close(): Promise<void>;
}

/** Accepts on `listen` and pipes each connection to a new connection to `target`. */
export async function startRelay(listen: Endpoint, target: Endpoint): Promise<Relay> {
  const open = new Set<Socket>();
  const server = createServer({ pauseOnConnect: true }, (client) => {
    const upstream = connect(target);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    upstream.once("connect", () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  if ("path" in listen) {
    try {
      unlinkSync(listen.path);
    } catch {
      // No stale socket to remove.
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("path" in listen) server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

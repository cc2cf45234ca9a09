/**
 * HTTP endpoints of the health, ready and prometheus plugins. Several server blocks may name
 * the same address; a reload keeps a listener whose address stays and swaps its routes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export class HttpStage {
  readonly routes = new Map<string, Map<string, HttpHandler>>();
  add(address: string, path: string, handler: HttpHandler): void {
    const key = normalizeAddress(address);
    let r = this.routes.get(key);
    if (!r) this.routes.set(key, (r = new Map()));
    r.set(path, handler);
  }
}

export function normalizeAddress(address: string): string {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new Error(`invalid address '${address}': expected [HOST]:PORT`);
  let host = m[1]!;
  if (host === "localhost") host = "127.0.0.1";
  if (host === "") host = "0.0.0.0";
  host = host.replace(/^\[(.*)\]$/, "$1");
  return `${host.includes(":") ? `[${host}]` : host}:${m[2]}`;
}

interface Live {
  server: Server;
  routes: Map<string, HttpHandler>;
}

export class HttpHub {
  private readonly live = new Map<string, Live>();

  async commit(stage: HttpStage): Promise<void> {
    for (const [addr, entry] of this.live) {
      if (!stage.routes.has(addr)) {
        this.live.delete(addr);
        await closeServer(entry.server);
      }
    }
    for (const [addr, routes] of stage.routes) {
      const existing = this.live.get(addr);
      if (existing) {
        existing.routes = routes;
        continue;
      }
      const entry: Live = { server: createServer(), routes };
      entry.server.on("request", (req, res) => {
        const path = (req.url ?? "/").split("?")[0]!;
        const h = entry.routes.get(path);
        if (!h) {
          res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("404 page not found\n");
          return;
        }
        Promise.resolve(h(req, res)).catch((err: Error) => {
          if (!res.headersSent) res.writeHead(500).end(`${err.message}\n`);
        });
      });
      const m = /^\[?(.*?)\]?:(\d+)$/.exec(addr)!;
      await new Promise<void>((resolve, reject) => {
        entry.server.once("error", reject);
        entry.server.listen(Number(m[2]), m[1], () => {
          entry.server.off("error", reject);
          resolve();
        });
      });
      this.live.set(addr, entry);
    }
  }

  /** The port actually bound for a configured address (which may name port 0). */
  port(address: string): number | undefined {
    const entry = this.live.get(normalizeAddress(address));
    return entry ? (entry.server.address() as AddressInfo).port : undefined;
  }

  async close(): Promise<void> {
    for (const entry of this.live.values()) await closeServer(entry.server);
    this.live.clear();
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * The node dataplane's control sockets (nat.sock, conntrack.sock): unix stream sockets that only
 * root may open, speaking one JSON object per line each way.
 */
import { chmodSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";

/** Listens on `socketPath`, replacing a stale socket file; only root/the owner may connect. */
export async function listenUnixSocket(socketPath: string, serve: (sock: Socket) => void): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true });
  if (existsSync(socketPath)) rmSync(socketPath, { force: true });
  const server = createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return server;
}

/** Sends one JSON request line and resolves with the first JSON line that answers it. */
export function requestJsonLine<Res>(socketPath: string, req: unknown, timeoutMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from the dataplane at ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => sock.write(JSON.stringify(req) + "\n"));
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl === -1) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Res);
      } catch {
        reject(new Error(`the dataplane at ${socketPath} answered something that is not JSON`));
      }
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
        reject(
          new Error(
            `no node dataplane is listening at ${socketPath} (is the node agent running? is --node right?)`,
          ),
        );
      else reject(err);
    });
  });
}

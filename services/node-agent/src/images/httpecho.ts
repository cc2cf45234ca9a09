import http from "node:http";
import { parseGoFlags } from "./flags.ts";
import { plainAddress } from "./agnhost.ts";

/** hashicorp/http-echo: answers every request with -text, on -listen (default :5678). */
export function httpEcho(argv: string[]): void {
  let f;
  try {
    f = parseGoFlags(argv, ["version"]);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  if (f.flags.get("version") === "true") {
    process.stdout.write("http-echo v1.0.0\n");
    process.exit(0);
  }
  const text = f.flags.get("text");
  if (text === undefined || text === "") {
    process.stderr.write("Missing -text option!\n");
    process.exit(127);
  }
  const listen = f.flags.get("listen") ?? ":5678";
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i) || undefined;
  const port = Number(listen.slice(i + 1));
  const stamp = () => new Date().toISOString().replace("T", " ").slice(0, 19).replace(/-/g, "/");
  const server = http.createServer((req, res) => {
    const headers = {
      "X-App-Name": "http-echo",
      "X-App-Version": "1.0.0",
      "Content-Type": "text/plain; charset=utf-8",
    };
    if (req.url === "/health") {
      res.writeHead(200, { ...headers, "Content-Type": "application/json" });
      res.end('{"status":"ok"}');
    } else {
      res.writeHead(200, headers);
      res.end(`${text}\n`);
    }
    process.stdout.write(
      `${stamp()} ${req.headers.host ?? ""} ${plainAddress(req.socket.remoteAddress ?? "")}:${req.socket.remotePort} "${req.method} ${req.url} HTTP/${req.httpVersion}" 200 ${text.length + 1} "${req.headers["user-agent"] ?? ""}" \n`,
    );
  });
  server.on("error", (e) => {
    process.stderr.write(`[ERR] Error starting server: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(port, host, () =>
    process.stdout.write(`${stamp()} [INFO] server is listening on ${listen}\n`),
  );
  process.on("SIGTERM", () => {
    process.stdout.write(`${stamp()} [INFO] server received signal terminated\n`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}

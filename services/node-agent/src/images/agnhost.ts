import { execFile } from "node:child_process";
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { intFlag, parseGoDuration, parseGoFlags } from "./flags.ts";

/** Go's log.Printf prefix: "2006/01/02 15:04:05 " in local time. */
function log(msg: string): void {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  process.stderr.write(
    `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${msg}\n`,
  );
}

function hostname(): string {
  return os.hostname();
}

/** Go reports an IPv4 peer of a dual-stack listener as IPv4, not as ::ffff:a.b.c.d. */
export function plainAddress(a: string): string {
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

function remoteAddr(sock: net.Socket): string {
  const a = plainAddress(sock.remoteAddress ?? "");
  return `${a.includes(":") ? `[${a}]` : a}:${sock.remotePort}`;
}

function netexec(args: string[]): void {
  const f = parseGoFlags(args);
  const httpPort = intFlag(f, "http-port", 8080);
  const udpPort = intFlag(f, "udp-port", 8081);
  const delayShutdown = intFlag(f, "delay-shutdown", 0);
  let ready = false;
  let sigterm = false;
  process.on("SIGTERM", () => {
    sigterm = true;
    if (delayShutdown > 0) log(`Sleeping ${delayShutdown} seconds before terminating...`);
    setTimeout(() => process.exit(0), delayShutdown * 1000);
  });

  // Go's net/http accepts 1 MB of request headers; Node's default is 16 KB
  const server = http.createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const q = url.searchParams;
    const send = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "Content-Type": type });
      res.end(body);
    };
    switch (url.pathname) {
      case "/":
        log("GET /");
        return send(200, `NOW: ${new Date().toISOString()}`);
      case "/clientip":
        log("GET /clientip");
        return send(200, remoteAddr(req.socket));
      case "/hostname":
      case "/hostName":
        log(`GET ${url.pathname}`);
        return send(200, hostname());
      case "/echo": {
        const msg = q.get("msg") ?? "";
        const code = q.get("code") ?? "";
        log(`GET /echo?msg=${msg}&code=${code}`);
        if (code !== "" && !/^-?\d+$/.test(code))
          return send(200, `argument 'code' must be an integer or empty, got "${code}"\n`);
        return send(code ? Number(code) : 200, msg);
      }
      case "/header": {
        const key = q.get("key");
        if (key) return send(200, String(req.headers[key.toLowerCase()] ?? ""));
        return send(200, JSON.stringify(req.headers));
      }
      case "/healthz":
        log("GET /healthz");
        return send(ready ? 200 : 412, "");
      case "/readyz":
        log("GET /readyz");
        if (sigterm) return send(503, "shutting down");
        return ready ? send(200, "ok") : send(412, "");
      case "/exit": {
        const code = q.get("code") ?? "";
        const timeout = q.get("timeout") ?? "";
        const wait = q.get("wait") ?? "";
        log(`GET /exit?code=${code}&timeout=${timeout}&wait=${wait}`);
        let waitMs = 0;
        let timeoutMs = 0;
        try {
          timeoutMs = timeout ? parseGoDuration(timeout) : 0;
        } catch {
          return send(200, `argument 'timeout' must be a valid golang duration or empty, got "${timeout}"\n`);
        }
        try {
          waitMs = wait ? parseGoDuration(wait) : 0;
        } catch {
          return send(200, `argument 'wait' must be a valid golang duration or empty, got "${wait}"\n`);
        }
        if (code !== "" && !/^\d+$/.test(code))
          return send(200, `argument 'code' must be an integer [0-127] or empty, got "${code}"\n`);
        const exitCode = code ? Number(code) : 0;
        setTimeout(() => {
          if (timeoutMs === 0) process.exit(exitCode);
          server.close(() => process.exit(exitCode));
          setTimeout(() => process.exit(exitCode), timeoutMs).unref();
        }, waitMs);
        return;
      }
      case "/shutdown":
        log("GET /shutdown");
        process.exit(0);
        return;
      case "/redirect": {
        const location = q.get("location") ?? "";
        const code = Number(q.get("code") || 302);
        res.writeHead(code, { Location: location });
        return res.end();
      }
      case "/shell": {
        const cmd = q.get("shellCommand") || q.get("cmd") || "";
        log(`GET /shell?cmd=${cmd}`);
        execFile("/bin/sh", ["-c", cmd], { encoding: "utf8" }, (err, stdout, stderr) => {
          const out: Record<string, string> = {};
          const combined = stdout + stderr;
          if (combined) out.output = combined;
          if (err) out.error = typeof err.code === "number" ? `exit status ${err.code}` : String(err.message);
          send(200, JSON.stringify(out));
        });
        return;
      }
      case "/dial":
        return dial(q, send);
      default:
        log(`GET ${url.pathname}`);
        return send(200, `NOW: ${new Date().toISOString()}`);
    }
  });
  server.on("error", (e) => {
    log(String(e));
    process.exit(1);
  });
  server.listen(httpPort, () => log(`Started HTTP server on port ${httpPort}`));

  if (udpPort !== -1) {
    const udp = dgram.createSocket("udp4");
    udp.on("message", (msg, rinfo) => {
      const text = msg.toString().trim();
      let reply: string;
      if (text === "hostname") reply = hostname();
      else if (text.startsWith("echo ")) reply = text.slice(5);
      else if (text === "clientip") reply = `${plainAddress(rinfo.address)}:${rinfo.port}`;
      else reply = "";
      log(`UDP ${text}`);
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
    udp.bind(udpPort, () => {
      log(`Started UDP server on port  ${udpPort}`);
      ready = true;
    });
  } else ready = true;
}

function dial(q: URLSearchParams, send: (code: number, body: string) => void): void {
  const host = q.get("host") ?? "";
  const port = Number(q.get("port"));
  const request = q.get("request") ?? "";
  const protocol = (q.get("protocol") || "http").toLowerCase();
  const tries = Number(q.get("tries") || 1);
  if (!request) return send(400, "request parameter not specified. <nil>\n");
  if (!Number.isInteger(tries)) return send(400, "tries parameter is invalid.\n");
  const responses: string[] = [];
  const errors: string[] = [];
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      if (protocol === "udp") {
        const s = dgram.createSocket("udp4");
        const t = setTimeout(() => {
          errors.push("reading from udp connection failed. err:'i/o timeout'");
          s.close();
          resolve();
        }, 5000);
        s.on("message", (m) => {
          clearTimeout(t);
          responses.push(m.toString());
          s.close();
          resolve();
        });
        s.send(request, port, host);
      } else {
        const req = http.get({ host, port, path: `/${request}`, timeout: 5000 }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => {
            responses.push(body);
            resolve();
          });
        });
        req.on("timeout", () => req.destroy(new Error("Client.Timeout exceeded while awaiting headers")));
        req.on("error", (e) => {
          errors.push(`Get "http://${host}:${port}/${request}": ${e.message}`);
          resolve();
        });
      }
    });
  (async () => {
    for (let i = 0; i < tries; i++) await once();
    const out: Record<string, string[]> = {};
    if (responses.length) out.responses = responses;
    if (errors.length) out.errors = errors;
    send(200, JSON.stringify(out));
  })();
}

function serveHostname(args: string[]): void {
  const f = parseGoFlags(args, ["tcp", "udp", "http", "close"]);
  const port = intFlag(f, "port", 9376);
  const tcp = f.flags.get("tcp") === "true";
  const udp = f.flags.get("udp") === "true";
  const httpOn = f.flags.get("http") !== "false" && !tcp && !udp;
  const close = f.flags.get("close") === "true";
  const name = hostname();
  log(`Serving on port ${port}.`);
  if (tcp) net.createServer((s) => s.end(name)).listen(port);
  if (udp) {
    const u = dgram.createSocket("udp4");
    u.on("message", (_m, r) => u.send(name, r.port, r.address));
    u.bind(port);
  }
  if (httpOn)
    http
      .createServer((req, res) => {
        if (close) res.setHeader("Connection", "close");
        res.end(name);
      })
      .listen(port);
  process.on("SIGTERM", () => {
    log("Received signal: terminated");
    process.exit(0);
  });
}

function connect(args: string[]): void {
  const f = parseGoFlags(args);
  if (f.positional.length !== 1) {
    process.stderr.write("Error: accepts 1 arg(s), received " + f.positional.length + "\n");
    process.exit(1);
  }
  const dest = f.positional[0];
  const timeoutMs = parseGoDuration(f.flags.get("timeout") ?? "5s");
  const protocol = f.flags.get("protocol") ?? "tcp";
  const i = dest.lastIndexOf(":");
  const host = dest.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(dest.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) {
    process.stderr.write(`OTHER: address ${dest}: missing port in address\n`);
    process.exit(1);
  }
  if (protocol === "udp") {
    const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const t = setTimeout(() => {
      process.stderr.write("TIMEOUT\n");
      process.exit(1);
    }, timeoutMs);
    s.on("message", () => {
      clearTimeout(t);
      process.exit(0);
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      process.stderr.write(e.code === "ECONNREFUSED" ? "REFUSED\n" : `OTHER: ${e.message}\n`);
      process.exit(1);
    });
    s.connect(port, host, () => s.send("hostname"));
    return;
  }
  if (protocol !== "tcp") {
    process.stderr.write(`Unsupported protocol ${protocol}\n`);
    process.exit(1);
  }
  const sock = net.connect({ host, port });
  const t = setTimeout(() => {
    process.stderr.write("TIMEOUT\n");
    process.exit(1);
  }, timeoutMs);
  sock.on("connect", () => {
    clearTimeout(t);
    sock.destroy();
    process.exit(0);
  });
  sock.on("error", (e: NodeJS.ErrnoException) => {
    clearTimeout(t);
    if (e.code === "ECONNREFUSED") process.stderr.write("REFUSED\n");
    else if (e.code === "ENOTFOUND" || e.code === "EAI_AGAIN")
      process.stderr.write(`DNS: lookup ${host}: ${e.code}\n`);
    else process.stderr.write(`OTHER: dial tcp ${dest}: ${e.message}\n`);
    process.exit(1);
  });
}

export function pause(): void {
  const stop = (sig: string) => {
    process.stderr.write(`Shutting down, got signal: ${sig}\n`);
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("Terminated"));
  process.on("SIGINT", () => stop("Interrupt"));
  setInterval(() => {}, 1 << 30);
}

const SUBCOMMANDS: Record<string, (args: string[]) => void> = {
  netexec,
  "serve-hostname": serveHostname,
  connect,
  pause: () => pause(),
};

export function agnhost(argv: string[]): void {
  const [sub, ...rest] = argv;
  const run = sub ? SUBCOMMANDS[sub] : undefined;
  if (!run) {
    process.stderr.write(
      `Error: unknown command "${sub ?? ""}" for "agnhost"\n` +
        `klab's agnhost implements: ${Object.keys(SUBCOMMANDS).join(", ")}\n`,
    );
    process.exit(1);
  }
  try {
    run(rest);
  } catch (e) {
    process.stderr.write(`Error: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

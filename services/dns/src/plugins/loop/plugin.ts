import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import dnsPacket from "dns-packet";
import { fqdnCase, type Plugin } from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseLoop } from "./parse.ts";

function safeClose(sock: ReturnType<typeof createSocket>): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}

function randomLabel(): string {
  return randomBytes(8).readBigUInt64BE().toString();
}

/**
 * Detects forwarding loops as CoreDNS does: sends itself `<random>.<random>.<zone> HINFO`; seeing
 * that query come back more than twice means the upstream sends our queries back to us, and the
 * server exits (in Kubernetes: CrashLoopBackOff with this message in the log).
 */
export const setup: Setup = (dirs, ctx) => {
  parseLoop(dirs);
  const zone = ctx.zones[0]!;
  const probe = `${randomLabel()}.${randomLabel()}.${zone === "." ? "" : zone}`;
  let seen = 0;
  let disabled = false;
  let stopped = false;
  const sockets = new Set<ReturnType<typeof createSocket>>();

  const exchange = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const sock = createSocket(host.includes(":") ? "udp6" : "udp4");
      sockets.add(sock);
      let finished = false;
      const done = (ok: boolean) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        sockets.delete(sock);
        safeClose(sock);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), 2000);
      sock.on("message", () => done(true));
      sock.on("error", () => done(false));
      sock.send(
        dnsPacket.encode({
          id: randomBytes(2).readUInt16BE(),
          type: "query",
          flags: 0x100,
          questions: [{ name: probe.replace(/\.$/, ""), type: "HINFO", class: "IN" }],
        }),
        port,
        host,
      );
    });

  ctx.onServing(() => {
    const deadline = Date.now() + 30_000;
    void (async () => {
      while (!stopped && !disabled && Date.now() < deadline) {
        const { host, port } = ctx.address();
        if (await exchange(host, port)) break;
        // As CoreDNS: a probe that got no answer (a slow or unreachable upstream) starts the
        // count again, so timeouts alone are never taken for a loop.
        seen = 0;
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
      disabled = true;
    })();
  });
  ctx.onShutdown(() => {
    stopped = true;
    for (const s of sockets) safeClose(s);
  });

  const plugin: Plugin = {
    name: "loop",
    serve(req, next) {
      if (disabled || req.question.type !== "HINFO" || fqdnCase(req.question.name).toLowerCase() !== probe)
        return next(req);
      seen++;
      if (seen > 2) {
        const { port } = ctx.address();
        ctx.runtime.fatal(
          `plugin/loop: Loop (${req.remote.address}:${req.remote.port} -> :${port}) detected for zone "${zone}", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ${probe}"`,
        );
        disabled = true;
      }
      return next(req);
    },
  };
  return [plugin];
};

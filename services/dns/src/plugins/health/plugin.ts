import { request } from "node:http";
import type { Setup } from "../../setup.ts";
import { parseHealth } from "./parse.ts";

/** `GET /health` answers `OK` while the process runs, through lameduck too. */
export const setup: Setup = (dirs, ctx) => {
  const opts = parseHealth(dirs);
  ctx.http.add(opts.address, "/health", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("OK");
  });
  ctx.lameduck(opts.lameduckMs);
  // The self-check CoreDNS runs every second feeds the health metrics.
  let timer: NodeJS.Timeout | undefined;
  const m = ctx.runtime.metrics;
  ctx.onServing(() => {
    const port = Number(/:(\d+)$/.exec(opts.address)![1]);
    if (port === 0) return;
    const host = opts.address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "") || "127.0.0.1";
    timer = setInterval(() => {
      const start = performance.now();
      const req = request(
        { host: host === "0.0.0.0" ? "127.0.0.1" : host, port, path: "/health", timeout: 1000 },
        (res) => {
          res.resume();
          m.healthDuration.observe((performance.now() - start) / 1000);
          if (res.statusCode !== 200) m.healthFailures.inc();
        },
      );
      req.on("error", () => m.healthFailures.inc());
      req.on("timeout", () => req.destroy());
      req.end();
    }, 1000);
    timer.unref();
  });
  ctx.onShutdown(() => clearInterval(timer));
  return [];
};

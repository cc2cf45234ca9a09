import type { Setup } from "../../setup.ts";
import { parseReady } from "./parse.ts";

/**
 * `GET /ready`: 200 `OK` once every plugin that reports readiness (kubernetes: informers synced)
 * is ready, else 503 with the names of those that are not. With `until-ready` a plugin that was
 * ready once stays reported ready.
 */
export const setup: Setup = (dirs, ctx) => {
  const opts = parseReady(dirs);
  let wasReady = false;
  ctx.http.add(opts.address, "/ready", (_req, res) => {
    const state = ctx.runtime.readiness();
    if (!state.stopping && (state.notReady.length === 0 || (wasReady && opts.monitor === "until-ready"))) {
      wasReady = true;
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("OK");
      return;
    }
    res
      .writeHead(503, { "content-type": "text/plain; charset=utf-8" })
      .end(state.notReady.length ? [...new Set(state.notReady)].sort().join(", ") : "shutting down");
  });
  return [];
};

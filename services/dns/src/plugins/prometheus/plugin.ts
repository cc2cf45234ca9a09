import { rcodeName, rcodeOf, type Plugin } from "../../message.ts";
import { childCache, localCounter, typeLabel } from "../../metrics.ts";
import type { Setup } from "../../setup.ts";
import { parsePrometheus } from "./parse.ts";

/** Serves `/metrics` and counts every query and reply of the server block. */
export const setup: Setup = (dirs, ctx) => {
  const address = parsePrometheus(dirs);
  const m = ctx.runtime.metrics;
  ctx.http.add(address, "/metrics", async (_req, res) => {
    const body = await m.registry.metrics();
    res.writeHead(200, { "content-type": m.registry.contentType }).end(body);
  });
  const requests = childCache((l) => localCounter(m.requests, l));
  const doRequests = childCache((l) => localCounter(m.doRequests, l));
  const requestSize = childCache((l) => m.requestSize.labels(l));
  const responses = childCache((l) => localCounter(m.responses, l));
  const responseSize = childCache((l) => m.responseSize.labels(l));
  const duration = childCache((l) => m.requestDuration.labels(l));
  const plugin: Plugin = {
    name: "prometheus",
    serve(req, next) {
      if (req.internal) return next(req);
      const { zone, server, proto } = req;
      const type = typeLabel(req.question.type);
      const family = req.remote.family === 6 ? "2" : "1";
      const zp = `${server}|${zone}|${proto}`;
      requests(`${zp}|${family}|${type}`, () => ({ server, zone, view: "", proto, family, type })).inc();
      if (req.do) doRequests(`${server}|${zone}`, () => ({ server, view: "", zone })).inc();
      requestSize(zp, () => ({ server, zone, view: "", proto })).observe(req.size);
      (req.afterWrite ??= []).push((res, size) => {
        const rcode = rcodeName(rcodeOf(res));
        const by = req.plugin ?? "";
        responses(`${server}|${zone}|${rcode}|${by}`, () => ({
          server,
          zone,
          view: "",
          rcode,
          plugin: by,
        })).inc();
        responseSize(zp, () => ({ server, zone, view: "", proto })).observe(size);
        duration(`${server}|${zone}|${type}`, () => ({ server, zone, view: "", type })).observe(
          (performance.now() - req.start) / 1000,
        );
      });
      return next(req);
    },
  };
  return [plugin];
};

import { rcodeName, rcodeOf, type Plugin } from "../../message.ts";
import { typeLabel } from "../../metrics.ts";
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
  const plugin: Plugin = {
    name: "prometheus",
    serve(req, next) {
      if (req.internal) return next(req);
      const zone = req.zone;
      const server = req.server;
      const type = typeLabel(req.question.type);
      m.requests.inc({
        server,
        zone,
        view: "",
        proto: req.proto,
        family: String(req.remote.family === 6 ? 2 : 1),
        type,
      });
      if (req.do) m.doRequests.inc({ server, zone, view: "" });
      m.requestSize.observe({ server, zone, view: "", proto: req.proto }, req.size);
      (req.afterWrite ??= []).push((res, size) => {
        m.responses.inc({ server, zone, view: "", rcode: rcodeName(rcodeOf(res)), plugin: req.plugin ?? "" });
        m.responseSize.observe({ server, zone, view: "", proto: req.proto }, size);
        m.requestDuration.observe({ server, zone, view: "", type }, (performance.now() - req.start) / 1000);
      });
      return next(req);
    },
  };
  return [plugin];
};

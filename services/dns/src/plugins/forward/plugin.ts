import dnsPacket from "dns-packet";
import {
  DnsError,
  Flag,
  Rcode,
  fqdnCase,
  inZone,
  matchZone,
  normalize,
  rcodeName,
  rcodeOf,
  reply,
  setRcode,
  type Message,
  type Plugin,
  type Request,
} from "../../message.ts";
import type { Setup } from "../../setup.ts";
import { parseForward, type ForwardOptions } from "./parse.ts";
import { Proxy } from "./proxy.ts";

/** The order upstreams are tried in for one query. */
export function pickOrder(
  n: number,
  policy: ForwardOptions["policy"],
  counter: number,
  random = Math.random,
): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  if (policy === "sequential") return idx;
  if (policy === "round_robin") return idx.map((i) => (i + counter) % n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

function forwarder(opts: ForwardOptions, ctx: Parameters<Setup>[1]): Plugin {
  const m = ctx.runtime.metrics;
  const proxies = opts.to.map(
    (to) =>
      new Proxy(to, opts, () =>
        m.proxyHealthcheckFailures.inc({ proxy_name: "forward", to: `${to.host}:${to.port}` }),
      ),
  );
  let counter = 0;
  let inflight = 0;
  ctx.onShutdown(() => proxies.forEach((p) => p.close()));

  const query = (req: Request): Buffer => {
    const msg = { ...req.msg, id: req.msg.id ?? 0, type: "query" as const, questions: [req.question] };
    return dnsPacket.encode(msg);
  };

  const attempt = async (req: Request): Promise<Message> => {
    const wire = query(req);
    const order = pickOrder(proxies.length, opts.policy, counter++);
    const deadline = Date.now() + 5000;
    let lastError: Error | undefined;
    let healthy = order.filter((i) => !proxies[i]!.down());
    if (healthy.length === 0) {
      if (opts.failfastAllUnhealthy) throw new DnsError(Rcode.SERVFAIL, "all upstreams are unhealthy");
      m.forwardHealthcheckBroken.inc();
      healthy = [order[0]!];
    }
    let proto: "udp" | "tcp" = opts.forceTcp ? "tcp" : opts.preferUdp ? "udp" : req.proto;
    for (let k = 0; k < healthy.length && Date.now() < deadline; k++) {
      const p = proxies[healthy[k]!]!;
      const start = performance.now();
      m.forwardRequests.inc({ to: p.label });
      try {
        let buf = await p.exchange(wire, proto);
        let res = normalize(dnsPacket.decode(buf));
        if (res.flags & Flag.TC && proto === "udp" && opts.preferUdp) {
          proto = "tcp";
          buf = await p.exchange(wire, proto);
          res = normalize(dnsPacket.decode(buf));
        }
        const rcode = rcodeName(rcodeOf(res));
        m.forwardResponses.inc({ to: p.label, rcode });
        m.proxyDuration.observe(
          { proxy_name: "forward", to: p.label, rcode },
          (performance.now() - start) / 1000,
        );
        p.fails = 0;
        res.additionals = res.additionals.filter((a) => (a.type as string) !== "OPT");
        // The reply answers the question as the client spelled it.
        res.questions = [req.question];
        return res;
      } catch (err) {
        lastError = err as Error;
        p.fails++;
        p.startHealthCheck();
      }
    }
    throw new DnsError(Rcode.SERVFAIL, lastError?.message ?? "no healthy upstream");
  };

  return {
    name: "forward",
    async serve(req, next) {
      const name = fqdnCase(req.question.name).toLowerCase();
      if (!inZone(name, opts.from) || (opts.except.length > 0 && matchZone(name, opts.except)))
        return next(req);
      if (opts.maxConcurrent > 0 && inflight >= opts.maxConcurrent) {
        m.forwardMaxConcurrentRejects.inc();
        return setRcode(reply(req), Rcode.REFUSED);
      }
      inflight++;
      try {
        const res = await attempt(req);
        if (opts.next.includes(rcodeOf(res))) return next(req);
        return res;
      } finally {
        inflight--;
      }
    },
  };
}

/** Each `forward` line is its own handler, tried in order (sub-domains first). */
export const setup: Setup = (dirs, ctx) => dirs.map((d) => forwarder(parseForward(d), ctx));

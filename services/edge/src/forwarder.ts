/**
 * The load balancer's data path: one TCP listener per LoadBalancer Service port, each connection
 * forwarded to a healthy node's NodePort (round robin). Listeners are reconciled in place, so a
 * change of nodes or health never drops a connection in flight. A published endpoint (the host's
 * 127.0.0.1:8080 for the ingress) is one more listener feeding the same targets.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { request } from "node:http";
import type { Logger } from "pino";
import type { ListenerSpec, Target } from "./listeners.ts";

export type Listen = { host: string; port: number } | { path: string };

interface Listener {
  listen: Listen;
  server: Server;
  targets: Target[];
  next: number;
}

export interface ForwarderMetrics {
  connection(service: string, outcome: "forwarded" | "no_healthy_node" | "upstream_error"): void;
}

const targetKey = (t: Target) => `${t.ip}:${t.port}`;
const checkKey = (t: Target) => `${t.ip}:${t.health.port}${t.health.path}`;

export class Forwarder {
  private readonly listeners = new Map<string, Listener>();
  /** Health by `ip:port/path`: a node is healthy after one passing check, unhealthy after two failing. */
  private readonly health = new Map<string, { healthy: boolean; failures: number }>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly metrics: ForwarderMetrics,
    private readonly options: { checkIntervalMs: number; checkTimeoutMs: number } = {
      checkIntervalMs: 2_000,
      checkTimeoutMs: 1_000,
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.checkAll(), this.options.checkIntervalMs);
    this.timer.unref();
  }

  /** Reconciles the listeners with the desired set; an unchanged listener keeps its connections. */
  async apply(specs: { id: string; service: string; listen: Listen; targets: Target[] }[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.id, s]));
    for (const [id, l] of this.listeners) {
      const spec = wanted.get(id);
      if (!spec || JSON.stringify(spec.listen) !== JSON.stringify(l.listen)) {
        this.listeners.delete(id);
        l.server.close();
        this.log.info({ listener: id }, "listener closed");
      }
    }
    for (const spec of specs) {
      const existing = this.listeners.get(spec.id);
      if (existing) {
        existing.targets = spec.targets;
        continue;
      }
      try {
        const listener = await this.open(spec.id, spec.service, spec.listen);
        listener.targets = spec.targets;
        this.listeners.set(spec.id, listener);
        this.log.info(
          { listener: spec.id, listen: spec.listen, targets: spec.targets.map(targetKey) },
          "listening",
        );
      } catch (err) {
        this.log.error({ listener: spec.id, err: (err as Error).message }, "cannot listen");
      }
    }
    void this.checkAll();
  }

  /** Targets a new connection may go to: the healthy ones, or all of them if none is (fail open, as cloud LBs do). */
  healthyTargets(targets: Target[]): Target[] {
    const healthy = targets.filter((t) => this.health.get(checkKey(t))?.healthy);
    return healthy.length ? healthy : targets;
  }

  private open(id: string, service: string, listen: Listen): Promise<Listener> {
    const listener: Listener = { listen, server: createServer(), targets: [], next: 0 };
    listener.server.on("connection", (client) => this.forward(listener, service, client));
    listener.server.on("error", (err) =>
      this.log.error({ listener: id, err: err.message }, "listener error"),
    );
    return new Promise((resolve, reject) => {
      listener.server.once("error", reject);
      const done = () => {
        listener.server.off("error", reject);
        resolve(listener);
      };
      if ("path" in listen) listener.server.listen(listen.path, done);
      else listener.server.listen(listen.port, listen.host, done);
    });
  }

  private forward(listener: Listener, service: string, client: Socket): void {
    const candidates = this.healthyTargets(listener.targets);
    if (!candidates.length) {
      this.metrics.connection(service, "no_healthy_node");
      client.destroy();
      return;
    }
    const target = candidates[listener.next++ % candidates.length]!;
    const upstream = createConnection(target.port, target.ip);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", (err) => {
      this.metrics.connection(service, "upstream_error");
      this.log.warn({ service, target: targetKey(target), err: err.message }, "upstream connection failed");
      end();
    });
    upstream.on("close", end);
    upstream.once("connect", () => {
      this.metrics.connection(service, "forwarded");
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  private async checkAll(): Promise<void> {
    const checks = new Map<string, Target>();
    for (const l of this.listeners.values()) for (const t of l.targets) checks.set(checkKey(t), t);
    await Promise.all(
      [...checks].map(async ([key, t]) => {
        const ok = await this.check(t);
        const state = this.health.get(key) ?? { healthy: false, failures: 0 };
        const was = state.healthy;
        if (ok) {
          state.healthy = true;
          state.failures = 0;
        } else if (++state.failures >= 2) {
          state.healthy = false;
        }
        this.health.set(key, state);
        if (was !== state.healthy)
          this.log.info({ check: key, healthy: state.healthy }, "node health changed");
      }),
    );
  }

  private check(t: Target): Promise<boolean> {
    return new Promise((resolve) => {
      const req = request(
        { host: t.ip, port: t.health.port, path: t.health.path, timeout: this.options.checkTimeoutMs },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const l of this.listeners.values()) {
      l.server.close();
    }
    this.listeners.clear();
  }
}

export type { ListenerSpec };

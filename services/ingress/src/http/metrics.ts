/** The controller's Prometheus metrics, named as ingress-nginx exports them, in a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface MetricsLabels {
  controllerClass: string;
  controllerNamespace: string;
  controllerPod: string;
}

export interface RequestLabels {
  ingress: string;
  namespace: string;
  service: string;
  status: number;
  method: string;
  host: string;
  path: string;
  canary: string;
}

export class IngressMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<string>;
  readonly requestDuration: Histogram<string>;
  readonly responseSize: Counter<string>;
  readonly reloadSuccessful: Gauge<string>;
  readonly reloadTimestamp: Gauge<string>;
  readonly reloads: Counter<string>;
  readonly connections: Gauge<string>;

  constructor(readonly labels: MetricsLabels) {
    this.registry.setDefaultLabels({
      controller_class: labels.controllerClass,
      controller_namespace: labels.controllerNamespace,
      controller_pod: labels.controllerPod,
    });
    collectDefaultMetrics({ register: this.registry });
    const requestLabels = ["ingress", "namespace", "service", "status", "method", "host", "path", "canary"];
    this.requests = new Counter({
      name: "nginx_ingress_controller_requests",
      help: "The total number of client requests",
      labelNames: requestLabels,
      registers: [this.registry],
    });
    this.requestDuration = new Histogram({
      name: "nginx_ingress_controller_request_duration_seconds",
      help: "The request processing time in seconds",
      labelNames: ["ingress", "namespace", "service", "status", "method", "host", "path", "canary"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.responseSize = new Counter({
      name: "nginx_ingress_controller_response_size",
      help: "The response length (including request line, header, and request body)",
      labelNames: ["ingress", "namespace", "service", "status", "method", "host", "path", "canary"],
      registers: [this.registry],
    });
    this.reloadSuccessful = new Gauge({
      name: "nginx_ingress_controller_config_last_reload_successful",
      help: "Whether the last configuration reload attempt was successful",
      registers: [this.registry],
    });
    this.reloadTimestamp = new Gauge({
      name: "nginx_ingress_controller_config_last_reload_successful_timestamp_seconds",
      help: "Timestamp of the last successful configuration reload",
      registers: [this.registry],
    });
    this.reloads = new Counter({
      name: "nginx_ingress_controller_success",
      help: "Cumulative number of Ingress controller reload operations",
      registers: [this.registry],
    });
    this.connections = new Gauge({
      name: "nginx_ingress_controller_nginx_process_connections",
      help: "current number of client connections with state {active, reading, writing, waiting}",
      labelNames: ["state"],
      registers: [this.registry],
    });
  }

  /**
   * One request. prom-client hashes a label object on every call; the children for a label set
   * are looked up here by one string key instead, built only when first seen.
   */
  observeRequest(l: RequestLabels, seconds: number, bytes: number): void {
    const key = `${l.ingress}\0${l.namespace}\0${l.service}\0${l.status}\0${l.method}\0${l.host}\0${l.path}\0${l.canary}`;
    let c = this.children.get(key);
    if (!c) {
      const labels = { ...l, status: String(l.status) };
      c = {
        requests: this.requests.labels(labels),
        duration: this.requestDuration.labels(labels),
        size: this.responseSize.labels(labels),
      };
      // Labels come partly from clients (method, host): bound the cache, not the metric.
      if (this.children.size >= 10_000) this.children.clear();
      this.children.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(seconds);
    c.size.inc(bytes);
  }

  private readonly children = new Map<
    string,
    {
      requests: ReturnType<Counter<string>["labels"]>;
      duration: ReturnType<Histogram<string>["labels"]>;
      size: ReturnType<Counter<string>["labels"]>;
    }
  >();

  configApplied(): void {
    this.reloadSuccessful.set(1);
    this.reloadTimestamp.set(Math.floor(Date.now() / 1000));
    this.reloads.inc();
  }
}

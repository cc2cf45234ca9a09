/** The controller's Prometheus metrics, named as ingress-nginx exports them, in a registry of its own. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

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

const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABEL_NAMES = [
  "ingress",
  "namespace",
  "service",
  "status",
  "method",
  "host",
  "path",
  "canary",
] as const;

interface Series {
  labels: Record<string, string>;
  count: number;
  bytes: number;
  seconds: number;
  /** observations per bucket (not cumulative), the last one is +Inf */
  buckets: Float64Array;
}

/** A value in the shape prom-client's Registry reads from a metric's get(). */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * The per-request series (requests, request duration, response size). prom-client hashes the
 * label object on every inc/observe, children included, which cost ~15 µs per request here;
 * these add to plain numbers in one record per label set, and the Registry reads them through
 * metrics of the shape it expects ({ name, help, type, get() }).
 */
export class RequestSeries {
  private readonly byKey = new Map<string, Series>();

  constructor(private readonly bounds: number[]) {}

  observe(l: RequestLabels, seconds: number, bytes: number): void {
    const key = `${l.ingress}\0${l.namespace}\0${l.service}\0${l.status}\0${l.method}\0${l.host}\0${l.path}\0${l.canary}`;
    let s = this.byKey.get(key);
    if (!s) {
      // Labels come partly from clients (method, host): bound the number of series.
      if (this.byKey.size >= 10_000) this.byKey.clear();
      s = {
        labels: { ...l, status: String(l.status) } as unknown as Record<string, string>,
        count: 0,
        bytes: 0,
        seconds: 0,
        buckets: new Float64Array(this.bounds.length + 1),
      };
      this.byKey.set(key, s);
    }
    s.count++;
    s.bytes += bytes;
    s.seconds += seconds;
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]) i++;
    s.buckets[i]++;
  }

  metrics(): Array<{ name: string; help: string; type: string; get(): Promise<unknown> }> {
    const all = (): Series[] => [...this.byKey.values()];
    const metric = (name: string, help: string, type: string, values: () => MetricValue[]) => ({
      name,
      help,
      type,
      labelNames: [...LABEL_NAMES],
      get: async () => ({ name, help, type, values: values(), aggregator: "sum" }),
      reset: () => this.byKey.clear(),
    });
    return [
      metric("nginx_ingress_controller_requests", "The total number of client requests", "counter", () =>
        all().map((s) => ({ labels: s.labels, value: s.count })),
      ),
      metric(
        "nginx_ingress_controller_request_duration_seconds",
        "The request processing time in seconds",
        "histogram",
        () =>
          all().flatMap((s) => {
            const out: MetricValue[] = [];
            let acc = 0;
            const bucket = `nginx_ingress_controller_request_duration_seconds_bucket`;
            this.bounds.forEach((le, i) => {
              acc += s.buckets[i];
              out.push({ labels: { ...s.labels, le }, value: acc, metricName: bucket });
            });
            out.push({ labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: bucket });
            out.push({
              labels: s.labels,
              value: s.seconds,
              metricName: "nginx_ingress_controller_request_duration_seconds_sum",
            });
            out.push({
              labels: s.labels,
              value: s.count,
              metricName: "nginx_ingress_controller_request_duration_seconds_count",
            });
            return out;
          }),
      ),
      metric(
        "nginx_ingress_controller_response_size",
        "The response length (including request line, header, and request body)",
        "counter",
        () => all().map((s) => ({ labels: s.labels, value: s.bytes })),
      ),
    ];
  }
}

export class IngressMetrics {
  readonly registry = new Registry();
  private readonly series: RequestSeries;
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
    this.series = new RequestSeries(REQUEST_BUCKETS);
    for (const m of this.series.metrics()) this.registry.registerMetric(m as never);
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

  /** One request: a map lookup and a few additions (see RequestSeries). */
  observeRequest(l: RequestLabels, seconds: number, bytes: number): void {
    this.series.observe(l, seconds, bytes);
  }

  configApplied(): void {
    this.reloadSuccessful.set(1);
    this.reloadTimestamp.set(Math.floor(Date.now() / 1000));
    this.reloads.inc();
  }
}

/**
 * Runs a scenario's probes against a live lab, the way a learner would look: curl from a pod
 * (kubectl exec), from a node (its network namespace) or from the host (the published ingress
 * ports), dig in a pod, a TLS handshake with SNI, EndpointSlices and pod readiness from the API.
 * The judging of what came back is pure and lives in the exported helpers.
 */
import { connect, type PeerCertificate } from "node:tls";
import type { EndpointSlice, Pod } from "@klab/api";
import { runCommand, type CommandResult, type LabTarget } from "./lab.ts";
import type { DnsProbe, From, HttpProbe, PodRef, PodsProbe, Probe, TlsProbe } from "./model.ts";

export interface ProbeResult {
  ok: boolean;
  /** What was seen (shown with --verbose): never the fix. */
  detail: string;
}

const STATUS_MARK = "\n@@klab-http-status=";

/** curl's argv for one request; `resolveTo` pins the URL's host to an address (--resolve). */
export function curlArgs(
  url: string,
  timeoutSeconds: number,
  resolveTo?: { port: number; address: string },
): string[] {
  const args = ["-sS", "-m", String(timeoutSeconds), "-w", `${STATUS_MARK}%{http_code}`];
  if (!resolveTo) return [...args, url];
  const u = new URL(url);
  const host = u.hostname;
  u.port = String(resolveTo.port);
  if (u.protocol === "https:") args.push("-k");
  return [...args, "--resolve", `${host}:${resolveTo.port}:${resolveTo.address}`, u.toString()];
}

export interface HttpAnswer {
  /** 0 when no HTTP answer came (connection refused, timeout, DNS failure). */
  status: number;
  body: string;
  error?: string;
}

export function parseCurl(r: CommandResult): HttpAnswer {
  const at = r.stdout.lastIndexOf(STATUS_MARK);
  const body = at >= 0 ? r.stdout.slice(0, at) : r.stdout;
  const status = at >= 0 ? Number(r.stdout.slice(at + STATUS_MARK.length).trim()) || 0 : 0;
  const lines = r.stderr.trim().split("\n").filter(Boolean);
  const error = lines.find((l) => l.startsWith("curl:")) ?? lines.pop();
  return { status, body, ...(status === 0 ? { error: error || `exit code ${r.code}` } : {}) };
}

export function judgeHttp(p: HttpProbe, answers: HttpAnswer[]): ProbeResult {
  const bad = answers.find(
    (a) => a.status !== p.expectStatus || (p.bodyContains !== undefined && !a.body.includes(p.bodyContains)),
  );
  const distinct = new Set(answers.map((a) => a.body.trim())).size;
  const seen = answers
    .map((a) => (a.status ? `HTTP ${a.status}` : (a.error ?? "no answer")))
    .filter((v, i, all) => all.indexOf(v) === i)
    .join(", ");
  if (bad) {
    const why =
      bad.status !== p.expectStatus
        ? bad.status
          ? `HTTP ${bad.status}`
          : (bad.error ?? "no answer")
        : `HTTP ${bad.status} without ${JSON.stringify(p.bodyContains)} in the body`;
    return { ok: false, detail: `${p.url}: ${why}` };
  }
  if (p.minDistinctBodies !== undefined && distinct < p.minDistinctBodies)
    return { ok: false, detail: `${p.url}: ${distinct} different answers in ${answers.length} requests` };
  return { ok: true, detail: `${p.url}: ${seen} (${answers.length} requests)` };
}

export interface DigAnswer {
  /** NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT when no server answered. */
  rcode: string;
  answers: string[];
}

export function parseDig(r: CommandResult): DigAnswer {
  const m = /->>HEADER<<-.*status: ([A-Z]+)/.exec(r.stdout);
  if (!m) return { rcode: "TIMEOUT", answers: [] };
  const section = /;; ANSWER SECTION:\n([\s\S]*?)(\n\n|$)/.exec(r.stdout);
  const answers = section ? section[1]!.split("\n").filter((l) => l.trim() && !l.startsWith(";")) : [];
  return { rcode: m[1]!, answers };
}

export function judgeDns(p: DnsProbe, a: DigAnswer): ProbeResult {
  const seen = a.rcode === "TIMEOUT" ? "no answer (timed out)" : `${a.rcode}, ${a.answers.length} answers`;
  const ok = p.expect === "answer" ? a.rcode === "NOERROR" && a.answers.length > 0 : a.rcode === "NXDOMAIN";
  return { ok, detail: `${p.name} ${p.type}: ${seen}` };
}

const podReady = (p: Pod) =>
  !p.metadata.deletionTimestamp &&
  p.status?.phase === "Running" &&
  !!p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

export function countReadyPods(pods: Pod[]): number {
  return pods.filter(podReady).length;
}

export function judgePods(p: PodsProbe, pods: Pod[]): ProbeResult {
  const ready = countReadyPods(pods);
  const live = pods.filter((x) => !x.metadata.deletionTimestamp).length;
  const ok = ready >= p.minReady && (p.maxReady === undefined || ready <= p.maxReady);
  return { ok, detail: `${p.namespace} pods ${p.selector}: ${ready}/${live} Ready` };
}

/** Ready endpoints of a Service's EndpointSlices (a nil `ready` counts as ready, as kube-proxy reads it). */
export function countReadyEndpoints(slices: EndpointSlice[]): number {
  let n = 0;
  for (const s of slices)
    for (const e of s.endpoints ?? []) if (e.conditions?.ready !== false) n += e.addresses.length ? 1 : 0;
  return n;
}

export function certificateNames(cert: Pick<PeerCertificate, "subject" | "subjectaltname" | "issuer">): {
  subject: string;
  issuer: string;
} {
  const dn = (o: Record<string, unknown> | undefined) =>
    Object.entries(o ?? {})
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
      .join(", ");
  const san = cert.subjectaltname ? `; ${cert.subjectaltname}` : "";
  return {
    subject: `${dn(cert.subject as unknown as Record<string, unknown>)}${san}`,
    issuer: dn(cert.issuer as unknown as Record<string, unknown>),
  };
}

export function judgeTls(p: TlsProbe, names: { subject: string; issuer: string }): ProbeResult {
  const ok =
    (p.expectSubjectContains === undefined || names.subject.includes(p.expectSubjectContains)) &&
    (p.expectIssuerContains === undefined || names.issuer.includes(p.expectIssuerContains));
  return { ok, detail: `${p.host}: subject ${names.subject}; issuer ${names.issuer}` };
}

/** Runs probes against one lab. */
export class ProbeRunner {
  constructor(private readonly lab: LabTarget) {}

  async run(p: Probe): Promise<ProbeResult> {
    try {
      switch (p.kind) {
        case "http":
          return await this.http(p.http);
        case "dns":
          return await this.dns(p.dns);
        case "tls":
          return await this.tls(p.tls);
        case "endpoints": {
          const { namespace, service, minReady } = p.endpoints;
          const list = await this.lab.client.list<EndpointSlice>("discovery.k8s.io/v1", "endpointslices", {
            namespace,
            labelSelector: `kubernetes.io/service-name=${service}`,
          });
          const ready = countReadyEndpoints(list.items);
          return { ok: ready >= minReady, detail: `${namespace}/${service}: ${ready} ready endpoints` };
        }
        case "pods": {
          const list = await this.lab.client.list<Pod>("v1", "pods", {
            namespace: p.pods.namespace,
            labelSelector: p.pods.selector,
          });
          return judgePods(p.pods, list.items);
        }
      }
    } catch (err) {
      return { ok: false, detail: `could not probe: ${(err as Error).message}` };
    }
  }

  /** A Running, Ready (else Running) pod the probe runs in. */
  async pickPod(ref: PodRef): Promise<string | { error: string }> {
    if (ref.name) return ref.name;
    const list = await this.lab.client.list<Pod>("v1", "pods", {
      namespace: ref.namespace,
      labelSelector: ref.selector!,
    });
    const live = list.items.filter((p) => !p.metadata.deletionTimestamp && p.status?.phase === "Running");
    const pod = live.find(podReady) ?? live[0];
    return pod?.metadata.name
      ? pod.metadata.name
      : { error: `no running pod in ${ref.namespace} matches ${ref.selector}` };
  }

  /** Runs a command from a vantage point (a pod or a node); the host runs it directly. */
  async from(from: From, command: string[], timeoutMs: number): Promise<CommandResult> {
    if ("pod" in from) {
      const pod = await this.pickPod(from.pod);
      if (typeof pod !== "string") return { code: 1, stdout: "", stderr: pod.error };
      return this.lab.kubectl(["-n", from.pod.namespace, "exec", pod, "--", ...command], { timeoutMs });
    }
    if ("node" in from) return this.lab.onNode(from.node, command, timeoutMs);
    return runCommand(command[0]!, command.slice(1), { timeoutMs });
  }

  private async http(p: HttpProbe): Promise<ProbeResult> {
    const answers: HttpAnswer[] = [];
    const u = new URL(p.url);
    const resolveTo =
      "host" in p.from
        ? { port: u.protocol === "https:" ? this.lab.httpsPort : this.lab.httpPort, address: "127.0.0.1" }
        : undefined;
    const argv = ["curl", ...curlArgs(p.url, p.timeoutSeconds, resolveTo)];
    for (let i = 0; i < p.count; i++) {
      const r = await this.from(p.from, argv, (p.timeoutSeconds + 20) * 1000);
      answers.push(parseCurl(r));
      if (answers[answers.length - 1]!.status !== p.expectStatus && p.minDistinctBodies === undefined) break;
    }
    return judgeHttp(p, answers);
  }

  private async dns(p: DnsProbe): Promise<ProbeResult> {
    const argv = ["dig", "+search", `+time=${p.timeoutSeconds}`, "+tries=2", "-t", p.type, p.name];
    const r = await this.from(p.from, argv, (p.timeoutSeconds * 2 + 20) * 1000);
    if (
      r.code !== 0 &&
      !r.stdout.includes("->>HEADER<<-") &&
      !/timed out|no servers/.test(r.stdout + r.stderr)
    )
      return { ok: false, detail: `${p.name}: ${r.stderr.trim() || `dig exit code ${r.code}`}` };
    return judgeDns(p, parseDig(r));
  }

  private tls(p: TlsProbe): Promise<ProbeResult> {
    return new Promise((done) => {
      const socket = connect({
        host: "127.0.0.1",
        port: this.lab.httpsPort,
        servername: p.host,
        rejectUnauthorized: false,
        timeout: p.timeoutSeconds * 1000,
      });
      const finish = (r: ProbeResult) => {
        socket.destroy();
        done(r);
      };
      socket.once("secureConnect", () => {
        const cert = socket.getPeerCertificate();
        if (!cert || !cert.subject) finish({ ok: false, detail: `${p.host}: no certificate` });
        else finish(judgeTls(p, certificateNames(cert)));
      });
      socket.once("timeout", () => finish({ ok: false, detail: `${p.host}: TLS handshake timed out` }));
      socket.once("error", (err) => finish({ ok: false, detail: `${p.host}: ${err.message}` }));
    });
  }
}

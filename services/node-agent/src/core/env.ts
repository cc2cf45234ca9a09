import type { Container, Pod, Service, ConfigMap, Secret } from "@klab/api";

/** Values the downward API can expose that only the node knows. */
export interface DownwardContext {
  podIP?: string;
  hostIP: string;
  nodeName: string;
}

export class EnvError extends Error {
  constructor(
    readonly reason: "CreateContainerConfigError",
    message: string,
  ) {
    super(message);
  }
}

function envName(service: string): string {
  return service.toUpperCase().replace(/-/g, "_");
}

/** Service environment variables, docker-link style, as kubelet's envvars.FromServices writes them. */
export function serviceEnv(services: Service[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const svc of services) {
    const ip = svc.spec?.clusterIP;
    // headless and ExternalName services get no variables
    if (!ip || ip === "None" || svc.spec?.type === "ExternalName") continue;
    const name = envName(svc.metadata?.name ?? "");
    const ports = svc.spec?.ports ?? [];
    out.push([`${name}_SERVICE_HOST`, ip]);
    if (ports.length) out.push([`${name}_SERVICE_PORT`, String(ports[0].port)]);
    for (const p of ports) if (p.name) out.push([`${name}_SERVICE_PORT_${envName(p.name)}`, String(p.port)]);
    if (ports.length) {
      const first = ports[0];
      out.push([`${name}_PORT`, `${(first.protocol ?? "TCP").toLowerCase()}://${ip}:${first.port}`]);
    }
    for (const p of ports) {
      const proto = p.protocol ?? "TCP";
      const prefix = `${name}_PORT_${p.port}_${proto}`;
      out.push([prefix, `${proto.toLowerCase()}://${ip}:${p.port}`]);
      out.push([`${prefix}_PROTO`, proto.toLowerCase()]);
      out.push([`${prefix}_PORT`, String(p.port)]);
      out.push([`${prefix}_ADDR`, ip]);
    }
  }
  return out;
}

/**
 * Which Services a pod sees as variables: those of its namespace when enableServiceLinks (default
 * true), and always the master service `kubernetes` from `default`. The pod's own namespace wins.
 */
export function visibleServices(pod: Pod, all: Service[]): Service[] {
  const ns = pod.metadata?.namespace ?? "default";
  const links = pod.spec?.enableServiceLinks !== false;
  const byName = new Map<string, Service>();
  for (const s of all) {
    const sns = s.metadata?.namespace ?? "default";
    if (sns === "default" && s.metadata?.name === "kubernetes" && !byName.has("kubernetes"))
      byName.set("kubernetes", s);
  }
  if (links)
    for (const s of all)
      if ((s.metadata?.namespace ?? "default") === ns) byName.set(s.metadata?.name ?? "", s);
  return [...byName.values()].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
}

/** Downward API fieldRef values (pkg/kubelet podFieldSelectorRuntimeValue). */
export function fieldRefValue(pod: Pod, path: string, ctx: DownwardContext): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]] ?? "";
  switch (path) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? ctx.nodeName;
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.hostIPs":
      return ctx.hostIP;
    case "status.podIP":
    case "status.podIPs":
      return ctx.podIP ?? "";
  }
  throw new EnvError("CreateContainerConfigError", `unsupported fieldRef fieldPath ${JSON.stringify(path)}`);
}

/** $(VAR) expansion as kubelet does it: defined names are replaced, $$ escapes, the rest stays. */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === "$" && input[i + 1] === "$") {
      out += "$";
      i++;
    } else if (c === "$" && input[i + 1] === "(") {
      const end = input.indexOf(")", i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      const v = lookup(name);
      out += v === undefined ? input.slice(i, end + 1) : v;
      i = end;
    } else out += c;
  }
  return out;
}

export interface EnvSources {
  services: Service[];
  configMaps: Map<string, ConfigMap>;
  secrets: Map<string, Secret>;
}

/** The container's environment in kubelet order: Service variables, envFrom, then env. */
export function buildContainerEnv(
  pod: Pod,
  container: Container,
  src: EnvSources,
  ctx: DownwardContext,
): Array<[string, string]> {
  const env = new Map<string, string>();
  for (const [k, v] of serviceEnv(visibleServices(pod, src.services))) env.set(k, v);
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef?.name) {
      const cm = src.configMaps.get(from.configMapRef.name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new EnvError("CreateContainerConfigError", `configmap "${from.configMapRef.name}" not found`);
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) env.set(prefix + k, v);
    }
    if (from.secretRef?.name) {
      const s = src.secrets.get(from.secretRef.name);
      if (!s) {
        if (from.secretRef.optional) continue;
        throw new EnvError("CreateContainerConfigError", `secret "${from.secretRef.name}" not found`);
      }
      for (const [k, v] of Object.entries(s.data ?? {}))
        env.set(prefix + k, Buffer.from(v, "base64").toString());
    }
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.fieldRef) env.set(e.name, fieldRefValue(pod, e.valueFrom.fieldRef.fieldPath, ctx));
    else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const v = src.configMaps.get(ref.name ?? "")?.data?.[ref.key];
      if (v === undefined) {
        if (ref.optional) continue;
        throw new EnvError(
          "CreateContainerConfigError",
          `couldn't find key ${ref.key} in ConfigMap ${pod.metadata?.namespace}/${ref.name}`,
        );
      }
      env.set(e.name, v);
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const v = src.secrets.get(ref.name ?? "")?.data?.[ref.key];
      if (v === undefined) {
        if (ref.optional) continue;
        throw new EnvError(
          "CreateContainerConfigError",
          `couldn't find key ${ref.key} in Secret ${pod.metadata?.namespace}/${ref.name}`,
        );
      }
      env.set(e.name, Buffer.from(v, "base64").toString());
    } else if (e.valueFrom?.resourceFieldRef) {
      env.set(e.name, resourceValue(container, e.valueFrom.resourceFieldRef.resource));
    } else
      env.set(
        e.name,
        expand(e.value ?? "", (n) => env.get(n)),
      );
  }
  return [...env.entries()];
}

function resourceValue(c: Container, resource: string): string {
  const [kind, name] = resource.split(".");
  const q = (kind === "limits" ? c.resources?.limits : c.resources?.requests)?.[name];
  if (q !== undefined) return String(q);
  // kubelet falls back to node allocatable for unset limits; requests default to 0
  return kind === "limits" ? (name === "cpu" ? "4" : "8589934592") : "0";
}

/** command and args after $(VAR) expansion against the container's environment. */
export function expandArgs(argv: string[] | undefined, env: Array<[string, string]>): string[] | undefined {
  if (!argv) return undefined;
  const m = new Map(env);
  return argv.map((a) => expand(a, (n) => m.get(n)));
}

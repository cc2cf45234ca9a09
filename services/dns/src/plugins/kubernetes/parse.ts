import type { Directive } from "../../corefile/parse.ts";
import { reverseZones } from "../../corefile/keys.ts";
import { argError, durationArg, intArg, normalizeZones, pluginError } from "../../setup.ts";
import { defaultKubernetesOptions, type KubernetesOptions, type PodMode } from "../../kubernetes/answer.ts";

export interface KubernetesConfig extends KubernetesOptions {
  kubeconfig?: { path: string; context?: string };
  endpoint?: string;
  startupTimeoutMs: number;
}

const P = "kubernetes";

/** Zone arguments may be names or CIDRs (`10.0.0.0/17`: the reverse zone around it). */
function zonesOf(args: string[], fallback: string[]): string[] {
  const zones = args.flatMap((a) => (a.includes("/") ? reverseZones(a) : normalizeZones([a], [])));
  return zones.length > 0 ? zones : fallback;
}

/** The `kubernetes [ZONES...] { ... }` block, with CoreDNS's options and defaults. */
export function parseKubernetes(dirs: Directive[], serverZones: string[]): KubernetesConfig {
  if (dirs.length > 1) throw pluginError(P, dirs[1]!, "this plugin can only be used once per Server Block");
  const d = dirs[0]!;
  let zones: string[];
  try {
    zones = zonesOf(d.args, serverZones);
  } catch (err) {
    throw pluginError(P, d, (err as Error).message);
  }
  const cfg: KubernetesConfig = { ...defaultKubernetesOptions, zones, startupTimeoutMs: 5000 };
  for (const o of d.block ?? []) {
    switch (o.name) {
      case "endpoint_pod_names":
        if (o.args.length) throw argError(P, o);
        cfg.endpointPodNames = true;
        break;
      case "pods": {
        if (o.args.length !== 1) throw argError(P, o);
        const mode = o.args[0]!;
        if (mode !== "disabled" && mode !== "insecure" && mode !== "verified") {
          throw pluginError(
            P,
            o,
            `wrong value for pods: ${mode},  must be one of: disabled, verified, insecure`,
          );
        }
        cfg.pods = mode as PodMode;
        break;
      }
      case "namespaces":
        if (o.args.length === 0) throw argError(P, o);
        cfg.namespaces = o.args.map((n) => n.toLowerCase());
        break;
      case "endpoint":
        if (o.args.length !== 1)
          throw pluginError(
            P,
            o,
            o.args.length > 1
              ? "multiple endpoints can no longer be specified"
              : "Wrong argument count or unexpected line ending after 'endpoint'",
          );
        if (!/^https?:\/\//.test(o.args[0]!))
          throw pluginError(P, o, `invalid endpoint URL '${o.args[0]}': expected http:// or https://`);
        cfg.endpoint = o.args[0]!;
        break;
      case "kubeconfig":
        if (o.args.length < 1 || o.args.length > 2) throw argError(P, o);
        cfg.kubeconfig = { path: o.args[0]!, context: o.args[1] };
        break;
      case "ttl":
        if (o.args.length !== 1) throw argError(P, o);
        if (!/^\d+$/.test(o.args[0]!) || Number(o.args[0]) > 3600)
          throw pluginError(P, o, `ttl must be in range [0, 3600]: ${o.args[0]}`);
        cfg.ttl = Number(o.args[0]);
        break;
      case "noendpoints":
        if (o.args.length) throw argError(P, o);
        cfg.noEndpoints = true;
        break;
      case "fallthrough":
        cfg.fallthrough = normalizeZones(o.args, []);
        break;
      case "ignore":
        if (o.args.length !== 1 || o.args[0] !== "empty_service")
          throw pluginError(P, o, `unable to parse ignore value: '${o.args.join(" ")}'`);
        cfg.ignoreEmptyService = true;
        break;
      case "startup_timeout":
        if (o.args.length !== 1) throw argError(P, o);
        cfg.startupTimeoutMs = durationArg(P, o, 0);
        break;
      case "apiserver_qps":
      case "apiserver_burst":
      case "apiserver_max_inflight":
        // Client-side rate limits: klab's client has none to set; the values are checked, not used.
        intArg(P, o, 0, 0);
        break;
      case "tls":
      case "labels":
      case "namespace_labels":
      case "multicluster":
        throw pluginError(P, o, `option '${o.name}' is not supported by klab's kubernetes plugin`);
      default:
        throw pluginError(P, o, `unknown property '${o.name}'`);
    }
  }
  if (cfg.endpoint && cfg.kubeconfig) throw pluginError(P, d, "endpoint and kubeconfig cannot both be set");
  return cfg;
}

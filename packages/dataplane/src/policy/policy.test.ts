import type { Namespace, NetworkPolicy, Pod } from "@klab/api";
import { describe, expect, it } from "vitest";
import type { FlowKey, PolicyContext } from "../stages.ts";
import { compilePolicies, effectivePolicyTypes } from "./compile.ts";
import { NetworkPolicyStage } from "./evaluate.ts";
import { flowMatches, parseFlowsRequest } from "./flow-socket.ts";

const pod = (
  ns: string,
  name: string,
  ip: string,
  labels: Record<string, string>,
  extra: Partial<Pod> = {},
): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { namespace: ns, name, labels },
  spec: {
    containers: [
      {
        name: "c",
        image: "nginx",
        ports: [
          { name: "http", containerPort: 8080, protocol: "TCP" },
          { name: "dns", containerPort: 5353, protocol: "UDP" },
        ],
      },
    ],
    ...extra.spec,
  },
  status: { phase: "Running", podIP: ip, ...extra.status },
});
const np = (ns: string, name: string, spec: NetworkPolicy["spec"]): NetworkPolicy => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { namespace: ns, name },
  spec,
});
const namespaces: Namespace[] = ["x", "y"].map((n) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: n, labels: { team: n === "y" ? "blue" : "red" } },
}));
const pods = [
  pod("x", "a", "10.0.0.1", { app: "a" }),
  pod("x", "b", "10.0.0.2", { app: "b" }),
  pod("y", "a", "10.0.0.3", { app: "a" }),
  pod("y", "host", "10.9.9.9", { app: "a" }, { spec: { hostNetwork: true, containers: [] } }),
];

function verdict(
  policies: NetworkPolicy[],
  flow: Partial<FlowKey>,
  direction: "ingress" | "egress",
  source: "pod" | "node" | "overlay" = "pod",
) {
  const stage = new NetworkPolicyStage();
  stage.load(compilePolicies(policies, pods, namespaces));
  const f: FlowKey = {
    protocol: "TCP",
    srcIP: "10.0.0.2",
    srcPort: 40000,
    dstIP: "10.0.0.1",
    dstPort: 8080,
    ...flow,
  };
  const ctx = {
    flow: f,
    source,
    nodeName: "n",
    nodeIP: "172.29.0.3",
    isLocalPod: () => true,
    isLocalAddress: (ip: string) => ip === "172.29.0.3",
    now: 0,
    direction,
    podIP: direction === "ingress" ? f.dstIP : f.srcIP,
  } satisfies PolicyContext;
  return stage.verdict(f, ctx);
}

describe("policyTypes defaulting", () => {
  it("is Ingress, plus Egress only when egress rules exist", () => {
    expect(effectivePolicyTypes(np("x", "p", { podSelector: {} }))).toEqual(["Ingress"]);
    expect(effectivePolicyTypes(np("x", "p", { podSelector: {}, egress: [] }))).toEqual(["Ingress"]);
    expect(effectivePolicyTypes(np("x", "p", { podSelector: {}, egress: [{}] }))).toEqual([
      "Ingress",
      "Egress",
    ]);
    expect(effectivePolicyTypes(np("x", "p", { podSelector: {}, policyTypes: ["Egress"] }))).toEqual([
      "Egress",
    ]);
  });
});

describe("verdicts from compiled policies", () => {
  it("names the policy that allowed, and the isolating ones when nothing did", () => {
    const p = np("x", "a-from-b", {
      podSelector: { matchLabels: { app: "a" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }] }],
    });
    expect(verdict([p], {}, "ingress")).toMatchObject({ allowed: true, policy: "x/a-from-b" });
    const denied = verdict([p], { srcIP: "10.0.0.3" }, "ingress");
    expect(denied).toMatchObject({ allowed: false, policy: "x/a-from-b" });
    expect(denied.reason).toContain("x/a is isolated for ingress by x/a-from-b");
  });

  it("always allows traffic from the pod's own node", () => {
    const deny = np("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] });
    expect(verdict([deny], { srcIP: "172.29.0.3" }, "ingress", "node").allowed).toBe(true);
    expect(verdict([deny], {}, "ingress").allowed).toBe(false);
  });

  it("resolves named ports on the destination, protocol included", () => {
    const tcpName = np("x", "named", { podSelector: {}, ingress: [{ ports: [{ port: "http" }] }] });
    expect(verdict([tcpName], {}, "ingress").allowed).toBe(true);
    expect(verdict([tcpName], { dstPort: 80 }, "ingress").allowed).toBe(false);
    const udpName = np("x", "named-udp", {
      podSelector: {},
      ingress: [{ ports: [{ port: "http", protocol: "UDP" }] }],
    });
    expect(verdict([udpName], {}, "ingress").allowed).toBe(false);
    const egress = np("x", "eg", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [{ ports: [{ port: "dns", protocol: "UDP" }] }],
    });
    expect(
      verdict([egress], { protocol: "UDP", srcIP: "10.0.0.1", dstIP: "10.0.0.3", dstPort: 5353 }, "egress")
        .allowed,
    ).toBe(true);
    // A named port cannot be resolved on an address that is no pod.
    expect(
      verdict([egress], { protocol: "UDP", srcIP: "10.0.0.1", dstIP: "192.0.2.1", dstPort: 5353 }, "egress")
        .allowed,
    ).toBe(false);
  });

  it("hostNetwork pods are neither selected nor peers", () => {
    const p = np("y", "from-a", {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }],
    });
    expect(verdict([p], { srcIP: "10.9.9.9", dstIP: "10.0.0.3" }, "ingress").allowed).toBe(false);
  });

  it("a bad ipBlock fails closed: the policy still isolates and the error is reported", () => {
    const index = compilePolicies(
      [np("x", "bad", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "fd00::/8" } }] }] })],
      pods,
      namespaces,
    );
    expect(index.errors).toEqual(['x/bad: ipBlock "fd00::/8" is not an IPv4 CIDR']);
    expect(index.pods.get("10.0.0.1")!.ingress.isolatedBy).toEqual(["x/bad"]);
  });

  it("namespace labels select peers; matchExpressions NotIn matches a missing key", () => {
    const p = np("x", "from-blue", {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } } }] }],
    });
    expect(verdict([p], { srcIP: "10.0.0.3" }, "ingress").allowed).toBe(true);
    expect(verdict([p], { srcIP: "10.0.0.2" }, "ingress").allowed).toBe(false);
    const notIn = np("x", "not-tier", {
      podSelector: {},
      ingress: [
        {
          from: [{ podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] } }],
        },
      ],
    });
    expect(verdict([notIn], {}, "ingress").allowed).toBe(true);
  });

  it("ICMP is outside NetworkPolicy", () => {
    const deny = np("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] });
    expect(verdict([deny], { protocol: "ICMP", dstPort: 0 }, "ingress").allowed).toBe(true);
  });
});

describe("flows socket requests", () => {
  it("refuses bad requests with a reason", () => {
    expect(parseFlowsRequest("nope")).toEqual({ error: "request is not valid JSON" });
    expect(parseFlowsRequest("[]")).toEqual({ error: "request must be a JSON object" });
    expect(parseFlowsRequest('{"last":-1}')).toEqual({ error: "last must be a non-negative integer" });
    expect(parseFlowsRequest('{"verdict":"MAYBE"}')).toEqual({
      error: "verdict must be FORWARDED, DROPPED or REJECTED",
    });
    expect(parseFlowsRequest('{"ips":[1]}')).toEqual({ error: "ips must be a list of IP addresses" });
  });

  it("filters by verdict and by either end's IP, before or after NAT", () => {
    const e = {
      time: 0,
      node: "n",
      type: "new" as const,
      verdict: "FORWARDED" as const,
      protocol: "TCP",
      source: "pod" as const,
      src: { ip: "10.0.0.2", port: 1 },
      dst: { ip: "10.96.0.10", port: 53 },
      natDst: { ip: "10.0.0.1", port: 53 },
    };
    expect(flowMatches(e, { ips: ["10.0.0.1"] })).toBe(true);
    expect(flowMatches(e, { ips: ["10.0.0.3"] })).toBe(false);
    expect(flowMatches(e, { verdict: "DROPPED" })).toBe(false);
    expect(flowMatches({ ...e, type: "end" }, {})).toBe(false);
  });
});

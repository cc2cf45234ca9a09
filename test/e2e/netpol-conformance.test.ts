/**
 * The upstream NetworkPolicy conformance model (test/e2e/network/netpol): namespaces x, y, z with
 * pods a, b, c each serving TCP and UDP on 80 and 81, policies applied with the real kubectl,
 * and the full 9×9 reachability matrix probed with real connections through two NodeDataplanes.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import {
  probeMatrix,
  Reachability,
  startNetpolCluster,
  type NetpolCluster,
  type PodSpec,
} from "./netpol-support.ts";

const NAMESPACES = ["x", "y", "z"];
const PODS = ["a", "b", "c"];
const ALL = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));

const specs: PodSpec[] = NAMESPACES.flatMap((namespace) =>
  PODS.map((name) => ({
    namespace,
    name,
    labels: { pod: name },
    node: name === "c" ? 1 : 0,
    ports: [
      { port: 80, protocol: "TCP" as const, name: "serve-80-tcp" },
      { port: 80, protocol: "UDP" as const, name: "serve-80-udp" },
      { port: 81, protocol: "TCP" as const, name: "serve-81-tcp" },
      { port: 81, protocol: "UDP" as const, name: "serve-81-udp" },
      { port: 53, protocol: "UDP" as const, name: "dns" },
      { port: 53, protocol: "TCP" as const, name: "dns-tcp" },
    ],
  })),
);

type Spec = Record<string, unknown>;
// JSON, not YAML: kubectl's YAML 1.1 would read a bare `y` (namespace y) as a boolean.
const manifest = (...items: unknown[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });
const np = (namespace: string, name: string, spec: Spec) => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { namespace, name },
  spec,
});
const nsSel = (...names: string[]) => ({
  matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: names }],
});
const podSel = (pod: string) => ({ matchLabels: { pod } });
const reach = (all: boolean) => new Reachability(ALL, all);

interface Case {
  name: string;
  policies: (c: NetpolCluster) => ReturnType<typeof np>[];
  probes: { port: number; protocol: "TCP" | "UDP"; expect: (c: NetpolCluster) => Reachability }[];
}

const tcp80 = (expect: (c: NetpolCluster) => Reachability) => ({
  port: 80,
  protocol: "TCP" as const,
  expect,
});

const cases: Case[] = [
  {
    name: "default deny ingress isolates every pod of the namespace",
    policies: () => [np("x", "deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] })],
    probes: [tcp80(() => reach(true).expect("*", "x/*", false))],
  },
  {
    name: "default deny egress stops everything leaving the namespace",
    policies: () => [np("x", "deny-egress", { podSelector: {}, policyTypes: ["Egress"] })],
    probes: [
      tcp80(() => reach(true).expect("x/*", "*", false)),
      { port: 81, protocol: "UDP", expect: () => reach(true).expect("x/*", "*", false) },
    ],
  },
  {
    name: "default deny ingress and egress",
    policies: () => [np("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] })],
    probes: [tcp80(() => reach(true).expect("x/*", "*", false).expect("*", "x/*", false))],
  },
  {
    name: "allow ingress from the same namespace only",
    policies: () => [
      np("x", "allow-same-ns", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/*", false).expect("x/*", "x/*", true))],
  },
  {
    name: "a podSelector peer selects pods of the policy's namespace only",
    policies: () => [
      np("x", "allow-b", { podSelector: podSel("a"), ingress: [{ from: [{ podSelector: podSel("b") }] }] }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/a", false).expect("x/b", "x/a", true))],
  },
  {
    name: "a namespaceSelector peer selects every pod of matching namespaces",
    policies: () => [
      np("x", "allow-ns-y", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ namespaceSelector: nsSel("y") }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/a", false).expect("y/*", "x/a", true))],
  },
  {
    name: "namespaceSelector with matchExpressions NotIn",
    policies: () => [
      np("x", "allow-not-x", {
        podSelector: podSel("a"),
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [
                    { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["x"] },
                  ],
                },
              },
            ],
          },
        ],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("x/*", "x/a", false))],
  },
  {
    name: "namespaceSelector and podSelector in one peer are ANDed",
    policies: () => [
      np("x", "allow-y-b", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ namespaceSelector: nsSel("y"), podSelector: podSel("b") }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/a", false).expect("y/b", "x/a", true))],
  },
  {
    name: "namespaceSelector and podSelector in two peers are ORed",
    policies: () => [
      np("x", "allow-y-or-b", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ namespaceSelector: nsSel("y") }, { podSelector: podSel("b") }] }],
      }),
    ],
    probes: [
      tcp80(() =>
        reach(true).expect("*", "x/a", false).expect("y/*", "x/a", true).expect("x/b", "x/a", true),
      ),
    ],
  },
  {
    name: "namespaceSelector {} means every namespace",
    policies: () => [
      np("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] }),
      np("x", "allow-all-ns-to-a", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ namespaceSelector: {} }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/*", false).expect("*", "x/a", true))],
  },
  {
    name: "a numeric port allows that port only",
    policies: () => [
      np("x", "allow-81", {
        podSelector: podSel("a"),
        ingress: [{ ports: [{ port: 81, protocol: "TCP" }] }],
      }),
    ],
    probes: [
      tcp80(() => reach(true).expect("*", "x/a", false)),
      { port: 81, protocol: "TCP", expect: () => reach(true) },
      { port: 81, protocol: "UDP", expect: () => reach(true).expect("*", "x/a", false) },
    ],
  },
  {
    name: "a named port is resolved on the destination pod",
    policies: () => [
      np("x", "allow-named-81", {
        podSelector: podSel("a"),
        ingress: [{ ports: [{ port: "serve-81-tcp" }] }],
      }),
    ],
    probes: [
      tcp80(() => reach(true).expect("*", "x/a", false)),
      { port: 81, protocol: "TCP", expect: () => reach(true) },
    ],
  },
  {
    name: "a named port with the wrong protocol matches nothing",
    policies: () => [
      np("x", "named-wrong-proto", {
        podSelector: podSel("a"),
        ingress: [{ ports: [{ port: "serve-80-tcp", protocol: "UDP" }] }],
      }),
    ],
    probes: [
      tcp80(() => reach(true).expect("*", "x/a", false)),
      { port: 80, protocol: "UDP", expect: () => reach(true).expect("*", "x/a", false) },
    ],
  },
  {
    name: "egress to a named port resolves it on the peer pod",
    policies: () => [
      np("x", "egress-named", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [{ ports: [{ port: "serve-81-udp", protocol: "UDP" }] }],
      }),
    ],
    probes: [
      { port: 81, protocol: "UDP", expect: () => reach(true) },
      { port: 81, protocol: "TCP", expect: () => reach(true).expect("x/a", "*", false) },
    ],
  },
  {
    name: "endPort opens an inclusive range",
    policies: () => [
      np("x", "range-79-80", {
        podSelector: podSel("a"),
        ingress: [{ ports: [{ protocol: "TCP", port: 79, endPort: 80 }] }],
      }),
    ],
    probes: [
      tcp80(() => reach(true)),
      { port: 81, protocol: "TCP", expect: () => reach(true).expect("*", "x/a", false) },
    ],
  },
  {
    name: "a protocol without a port opens every port of that protocol only",
    policies: () => [
      np("x", "udp-only", { podSelector: podSel("a"), ingress: [{ ports: [{ protocol: "UDP" }] }] }),
    ],
    probes: [
      tcp80(() => reach(true).expect("*", "x/a", false)),
      { port: 81, protocol: "UDP", expect: () => reach(true) },
    ],
  },
  {
    name: "egress ipBlock with except (pod IPs included)",
    policies: (c) => [
      np("x", "egress-cidr-except", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "10.244.0.0/16", except: [`${c.pods.get("y/b")!.ip}/32`] } }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("x/a", "y/b", false))],
  },
  {
    name: "except narrows only its own peer: another peer can re-allow the address",
    policies: () => [
      np("x", "egress-cidr-except-or-pod", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [
          {
            to: [
              { ipBlock: { cidr: "10.244.0.0/16", except: ["10.244.2.0/24"] } },
              { namespaceSelector: nsSel("z"), podSelector: podSel("c") },
            ],
          },
        ],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("x/a", "x/c", false).expect("x/a", "y/c", false))],
  },
  {
    name: "ingress ipBlock from the other node's pod range",
    policies: () => [
      np("x", "from-node-2-pods", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ ipBlock: { cidr: "10.244.2.0/24" } }] }],
      }),
    ],
    probes: [
      tcp80(() =>
        reach(true)
          .expect("*", "x/a", false)
          .expect("x/c", "x/a", true)
          .expect("y/c", "x/a", true)
          .expect("z/c", "x/a", true),
      ),
    ],
  },
  {
    name: "egress to specific pods only",
    policies: () => [
      np("x", "egress-to-b", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [{ to: [{ podSelector: podSel("b") }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("x/a", "*", false).expect("x/a", "x/b", true))],
  },
  {
    name: "both ends must agree: egress of the client and ingress of the server",
    policies: () => [
      np("x", "a-egress-to-y", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [{ to: [{ namespaceSelector: nsSel("y") }] }],
      }),
      np("y", "b-from-z", {
        podSelector: podSel("b"),
        ingress: [{ from: [{ namespaceSelector: nsSel("z") }] }],
      }),
    ],
    probes: [
      tcp80(() =>
        reach(true)
          .expect("x/a", "*", false)
          .expect("x/a", "y/*", true)
          .expect("*", "y/b", false)
          .expect("z/*", "y/b", true)
          .expect("x/a", "y/b", false),
      ),
    ],
  },
  {
    name: "policies are a union: each one adds what it allows",
    policies: () => [
      np("x", "a-from-b", { podSelector: podSel("a"), ingress: [{ from: [{ podSelector: podSel("b") }] }] }),
      np("x", "a-from-y", {
        podSelector: podSel("a"),
        ingress: [{ from: [{ namespaceSelector: nsSel("y") }] }],
      }),
    ],
    probes: [
      tcp80(() =>
        reach(true).expect("*", "x/a", false).expect("x/b", "x/a", true).expect("y/*", "x/a", true),
      ),
    ],
  },
  {
    name: "a policy that selects no pod has no effect",
    policies: () => [
      np("x", "selects-nothing", { podSelector: podSel("nobody"), policyTypes: ["Ingress", "Egress"] }),
    ],
    probes: [tcp80(() => reach(true))],
  },
  {
    name: "deny all, then allow a target",
    policies: () => [
      np("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress"] }),
      np("x", "allow-c-from-z", {
        podSelector: podSel("c"),
        ingress: [{ from: [{ namespaceSelector: nsSel("z") }] }],
      }),
    ],
    probes: [tcp80(() => reach(true).expect("*", "x/*", false).expect("z/*", "x/c", true))],
  },
  {
    name: "allow all ingress with one empty rule, despite a deny-all",
    policies: () => [
      np("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress"] }),
      np("x", "allow-all", { podSelector: {}, ingress: [{}] }),
    ],
    probes: [tcp80(() => reach(true))],
  },
  {
    name: "deny all egress except DNS on 53 UDP and TCP",
    policies: () => [
      np("x", "deny-all-but-dns", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
        ],
      }),
    ],
    probes: [
      { port: 53, protocol: "UDP", expect: () => reach(true) },
      tcp80(() => reach(true).expect("x/*", "*", false)),
    ],
  },
  {
    name: "an egress-only policy written without policyTypes isolates ingress too",
    policies: () => [
      np("x", "egress-no-types", { podSelector: podSel("a"), egress: [{ to: [{ podSelector: {} }] }] }),
    ],
    probes: [
      tcp80(() => reach(true).expect("*", "x/a", false).expect("x/a", "*", false).expect("x/a", "x/*", true)),
    ],
  },
  {
    name: "rules of a direction not in policyTypes are ignored",
    policies: () => [
      np("x", "egress-type-with-ingress-rules", {
        podSelector: podSel("a"),
        policyTypes: ["Egress"],
        egress: [{}],
        ingress: [{ from: [{ namespaceSelector: nsSel("y") }] }],
      }),
    ],
    probes: [tcp80(() => reach(true))],
  },
  {
    name: "ingress and egress rules in one policy",
    policies: () => [
      np("y", "b-both", {
        podSelector: podSel("b"),
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ namespaceSelector: nsSel("x") }], ports: [{ port: 80 }] }],
        egress: [{ to: [{ namespaceSelector: nsSel("z"), podSelector: podSel("a") }] }],
      }),
    ],
    probes: [
      tcp80(() =>
        reach(true)
          .expect("*", "y/b", false)
          .expect("x/*", "y/b", true)
          .expect("y/b", "*", false)
          .expect("y/b", "z/a", true),
      ),
    ],
  },
];

let cluster: NetpolCluster;

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl"] },
  "NetworkPolicy conformance model (x, y, z × a, b, c)",
  () => {
    beforeAll(async () => {
      cluster = await startNetpolCluster(specs, "conf");
    }, 120_000);
    afterAll(async () => {
      await cluster?.close();
    }, 60_000);

    it("every pod reaches every pod when no policy exists", async () => {
      for (const [port, protocol] of [
        [80, "TCP"],
        [81, "UDP"],
      ] as const) {
        const { wrong, table } = await probeMatrix(cluster, port, protocol, reach(true));
        expect(wrong, table).toEqual([]);
      }
    }, 60_000);

    for (const c of cases) {
      it(
        c.name,
        async () => {
          await cluster.resetPolicies();
          await cluster.apply(manifest(...c.policies(cluster)));
          await cluster.waitForPolicies();
          for (const p of c.probes) {
            const { wrong, table, results } = await probeMatrix(
              cluster,
              p.port,
              p.protocol,
              p.expect(cluster),
            );
            expect(wrong, table).toEqual([]);
            // A denied TCP connection is dropped silently: the client times out, never refused.
            if (p.protocol === "TCP")
              for (const r of results.values()) if (!r.ok) expect(r.error).toBe("timeout");
          }
        },
        60_000,
      );
    }

    it("recompiles when namespace and pod labels change", async () => {
      await cluster.resetPolicies();
      await cluster.apply(
        manifest(
          np("x", "from-team-blue", {
            podSelector: podSel("a"),
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "blue" } } }] }],
          }),
          np("x", "to-role-web", {
            podSelector: { matchLabels: { role: "web" } },
            policyTypes: ["Ingress"],
          }),
        ),
      );
      await cluster.waitForPolicies();
      expect((await cluster.probe("y/a", "x/a", 80, "TCP")).ok).toBe(false);
      expect((await cluster.probe("y/a", "x/b", 80, "TCP")).ok).toBe(true);
      let r = await cluster.api.kubectl(["label", "namespace", "y", "team=blue"]);
      expect(r.code, r.stderr).toBe(0);
      r = await cluster.api.kubectl(["label", "pod", "-n", "x", "b", "role=web"]);
      expect(r.code, r.stderr).toBe(0);
      // New connections follow a change within one second.
      await new Promise((res) => setTimeout(res, 1000));
      expect((await cluster.probe("y/a", "x/a", 80, "TCP")).ok).toBe(true);
      expect((await cluster.probe("z/a", "x/a", 80, "TCP")).ok).toBe(false);
      expect((await cluster.probe("y/a", "x/b", 80, "TCP")).ok).toBe(false);
      await cluster.api.kubectl(["label", "namespace", "y", "team-"]);
      await cluster.api.kubectl(["label", "pod", "-n", "x", "b", "role-"]);
    }, 60_000);

    it("an established connection keeps flowing when a policy denies it; new ones are denied within one second", async () => {
      await cluster.resetPolicies();
      expect((await cluster.hold("y/c", "x/a", 81, "long")).ok).toBe(true);
      expect((await cluster.echo("y/c", "long")).ok).toBe(true);
      await cluster.apply(manifest(np("x", "deny-later", { podSelector: {}, policyTypes: ["Ingress"] })));
      await new Promise((res) => setTimeout(res, 1000));
      expect((await cluster.probe("y/c", "x/a", 81, "TCP")).ok).toBe(false);
      expect((await cluster.echo("y/c", "long")).ok).toBe(true);
      expect((await cluster.echo("y/c", "long")).ok).toBe(true);
    }, 60_000);
  },
);

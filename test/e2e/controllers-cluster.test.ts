import { afterAll, beforeAll, expect, it } from "vitest";
import type { Node, Pod } from "@klab/api";
import { describeWith } from "../support/prereq.ts";
import {
  type ControlPlane,
  eventually,
  fakeKubelets,
  nodeHeartbeats,
  postNodeReady,
  registerNodes,
  startControlPlane,
} from "./controllers-harness.ts";

const svc = (name: string, spec: object) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { ports: [{ port: 80 }], ...spec },
  });

describeWith(
  { tools: ["kubectl"] },
  "controllers: namespaces, allocation errors, scheduling and node health",
  () => {
    let cp: ControlPlane;
    let stopKubelets: () => Promise<void>;
    let heartbeats: ReturnType<typeof nodeHeartbeats>;

    beforeAll(async () => {
      cp = await startControlPlane({ nodeMonitorGracePeriodMs: 3_000, nodeMonitorPeriodMs: 250 });
      await registerNodes(cp, ["node-a", "node-b", "node-c"]);
      heartbeats = nodeHeartbeats(cp, ["node-a", "node-b", "node-c"]);
      stopKubelets = fakeKubelets(cp, { ready: (p) => p.metadata.labels?.["slow"] !== "true" });
    });

    afterAll(async () => {
      heartbeats?.stop();
      await stopKubelets?.();
      await cp?.stop();
    });

    it("refuses a taken ClusterIP and NodePort with kube-apiserver's messages", async () => {
      await cp.k(
        ["apply", "-f", "-"],
        svc("first", { clusterIP: "10.96.0.50", type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }),
      );
      const ip = await cp.kubectl(["apply", "-f", "-"], svc("second", { clusterIP: "10.96.0.50" }));
      expect(ip.code).not.toBe(0);
      expect(ip.stderr).toContain(
        'The Service "second" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: provided IP is already allocated',
      );
      const port = await cp.kubectl(
        ["apply", "-f", "-"],
        svc("third", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }),
      );
      expect(port.stderr).toContain(
        'The Service "third" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
      );
      const range = await cp.kubectl(["apply", "-f", "-"], svc("fourth", { clusterIP: "192.168.1.1" }));
      expect(range.stderr).toContain(
        "failed to allocate IP 192.168.1.1: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
      );
      // Deleting the Service frees both.
      await cp.k(["delete", "svc", "first"]);
      await cp.k(
        ["apply", "-f", "-"],
        svc("second", { clusterIP: "10.96.0.50", type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }),
      );
      const out = await cp.k([
        "get",
        "svc",
        "second",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}",
      ]);
      expect(out).toBe("10.96.0.50 30080");
    });

    it("resolves named targetPorts per pod, splits ready from not-ready and honours publishNotReadyAddresses", async () => {
      const podManifest = (name: string, port: number, slow: boolean) => ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, labels: { app: "named", ...(slow ? { slow: "true" } : {}) } },
        spec: { containers: [{ name: "c", image: "nginx", ports: [{ name: "web", containerPort: port }] }] },
      });
      const list = {
        apiVersion: "v1",
        kind: "List",
        items: [
          podManifest("named-1", 8080, false),
          podManifest("named-2", 9090, false),
          podManifest("named-3", 8080, true),
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "named" },
            spec: { selector: { app: "named" }, ports: [{ name: "http", port: 80, targetPort: "web" }] },
          },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "named-all" },
            spec: {
              clusterIP: "None",
              publishNotReadyAddresses: true,
              selector: { app: "named" },
              ports: [{ name: "http", port: 80, targetPort: "web" }],
            },
          },
        ],
      };
      await cp.k(["apply", "-f", "-"], JSON.stringify(list));
      const subsets = await eventually("Endpoints with two port groups", async () => {
        const ep = await cp.client.get<{
          subsets?: Array<{
            addresses?: Array<{ targetRef: { name: string } }>;
            notReadyAddresses?: Array<{ targetRef: { name: string } }>;
            ports: Array<{ port: number; name: string }>;
          }>;
        }>("v1", "endpoints", "default", "named");
        const s = ep?.subsets ?? [];
        const total = s.reduce(
          (n, x) => n + (x.addresses?.length ?? 0) + (x.notReadyAddresses?.length ?? 0),
          0,
        );
        return total === 3 && s;
      });
      const by = Object.fromEntries(subsets.map((x) => [x.ports[0]!.port, x]));
      expect(by[8080]!.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]);
      expect(by[8080]!.addresses!.map((a) => a.targetRef.name)).toEqual(["named-1"]);
      expect(by[8080]!.notReadyAddresses!.map((a) => a.targetRef.name)).toEqual(["named-3"]);
      expect(by[9090]!.addresses!.map((a) => a.targetRef.name)).toEqual(["named-2"]);
      const slices = JSON.parse(
        await cp.k(["get", "endpointslices", "-l", "kubernetes.io/service-name=named", "-o", "json"]),
      ).items as Array<{ ports: Array<{ port: number }>; endpoints: unknown[] }>;
      expect(slices.map((x) => x.ports[0]!.port).sort()).toEqual([8080, 9090]);
      const all = await eventually("headless slices publishing every pod as ready", async () => {
        const items = JSON.parse(
          await cp.k(["get", "endpointslices", "-l", "kubernetes.io/service-name=named-all", "-o", "json"]),
        ).items as Array<{
          metadata: { labels: Record<string, string> };
          endpoints: Array<{ conditions: { ready: boolean } }>;
        }>;
        const eps = items.flatMap((x) => x.endpoints ?? []);
        return eps.length === 3 && items;
      });
      expect(all.flatMap((x) => x.endpoints).every((e) => e.conditions.ready)).toBe(true);
      expect(all[0]!.metadata.labels["service.kubernetes.io/headless"]).toBe("");
      await cp.k(["delete", "-f", "-"], JSON.stringify(list));
    });

    it("frees the node port when a Service changes from NodePort to ClusterIP", async () => {
      await cp.k(
        ["apply", "-f", "-"],
        svc("flip", { type: "NodePort", ports: [{ port: 80, nodePort: 30500 }] }),
      );
      await cp.k(["patch", "svc", "flip", "--type=merge", "-p", '{"spec":{"type":"ClusterIP"}}']);
      expect(await cp.k(["get", "svc", "flip", "-o", "jsonpath={.spec.ports[0].nodePort}"])).toBe("");
      await cp.k(
        ["apply", "-f", "-"],
        svc("flop", { type: "NodePort", ports: [{ port: 80, nodePort: 30500 }] }),
      );
      const lb = await cp.k(["create", "service", "loadbalancer", "edge", "--tcp=80:8080", "-o", "json"]);
      const spec = JSON.parse(lb).spec as { clusterIP: string; ports: Array<{ nodePort: number }> };
      expect(spec.ports[0]!.nodePort).toBeGreaterThanOrEqual(30000);
      expect(spec.clusterIP).toMatch(/^10\./);
    });

    it("reports FailedScheduling with kube-scheduler's message, then schedules when a node fits", async () => {
      const manifest = JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "needs-ssd" },
        spec: { nodeSelector: { disk: "ssd" }, containers: [{ name: "c", image: "nginx" }] },
      });
      await cp.k(["apply", "-f", "-"], manifest);
      const msg = await eventually("a FailedScheduling event", async () => {
        const out = await cp.k([
          "get",
          "events",
          "--field-selector",
          "involvedObject.name=needs-ssd,reason=FailedScheduling",
          "-o",
          "jsonpath={.items[*].message}",
        ]);
        return out.trim();
      });
      expect(msg).toBe(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
      );
      const cond = await cp.k([
        "get",
        "pod",
        "needs-ssd",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}',
      ]);
      expect(cond).toBe("Unschedulable");
      await cp.k(["label", "node", "node-b", "disk=ssd"]);
      await eventually("the pod bound to node-b", async () => {
        const p = await cp.client.get<Pod>("v1", "pods", "default", "needs-ssd");
        return p?.spec?.nodeName === "node-b";
      });
    });

    it("runs one DaemonSet pod per node and reports its status", async () => {
      const ds = {
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: "agent", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "agent" } },
          template: {
            metadata: { labels: { app: "agent" } },
            spec: { containers: [{ name: "a", image: "busybox" }] },
          },
        },
      };
      await cp.k(["apply", "-f", "-"], JSON.stringify(ds));
      const pods = await eventually("3 DaemonSet pods bound", async () => {
        const list = (
          await cp.client.list<Pod>("v1", "pods", { namespace: "default", labelSelector: "app=agent" })
        ).items;
        return list.length === 3 && list.every((p) => p.spec?.nodeName) && list;
      });
      expect(pods.map((p) => p.spec!.nodeName).sort()).toEqual(["node-a", "node-b", "node-c"]);
      const out = await cp.k(["rollout", "status", "daemonset/agent", "--timeout=30s"]);
      expect(out).toContain('daemon set "agent" successfully rolled out');
      const status = JSON.parse(await cp.k(["get", "ds", "agent", "-o", "jsonpath={.status}"]));
      expect(status).toMatchObject({
        desiredNumberScheduled: 3,
        currentNumberScheduled: 3,
        numberReady: 3,
        numberMisscheduled: 0,
      });
    });

    it("deletes everything in a namespace, then the namespace", async () => {
      await cp.k(["create", "namespace", "team-x"]);
      await cp.k(["-n", "team-x", "create", "deployment", "api", "--image=nginx", "--replicas=2"]);
      await cp.k(["-n", "team-x", "create", "configmap", "settings", "--from-literal=a=b"]);
      await cp.k(["-n", "team-x", "expose", "deployment", "api", "--port=80"]);
      await eventually("2 pods running in team-x", async () => {
        const list = (await cp.client.list<Pod>("v1", "pods", { namespace: "team-x" })).items;
        return list.length === 2 && list.every((p) => p.status?.podIP);
      });
      await cp.k(["delete", "namespace", "team-x", "--wait=false"]);
      await eventually("namespace team-x gone", async () => {
        const r = await cp.kubectl(["get", "namespace", "team-x"]);
        return r.code !== 0 && r.stderr.includes('namespaces "team-x" not found');
      });
      for (const kind of [
        "pods",
        "deployments",
        "replicasets",
        "services",
        "endpoints",
        "endpointslices",
        "configmaps",
      ]) {
        const list = await cp.client.list(
          kind === "deployments" || kind === "replicasets"
            ? "apps/v1"
            : kind === "endpointslices"
              ? "discovery.k8s.io/v1"
              : "v1",
          kind,
          { namespace: "team-x" },
        );
        expect(list.items, kind).toEqual([]);
      }
    });

    it("marks a silent node Unknown, taints it and its pods not ready, and untaints it when it reports again", async () => {
      const name = "node-c";
      const pod = await eventually("a ready pod on node-c", async () => {
        const list = (await cp.client.list<Pod>("v1", "pods", { fieldSelector: `spec.nodeName=${name}` }))
          .items;
        return list.find(
          (p) =>
            !p.metadata.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
      });
      heartbeats.silence(name);
      {
        const node = await eventually("node-c Unknown and tainted", async () => {
          const n = await cp.client.get<Node>("v1", "nodes", undefined, name);
          const ready = n?.status?.conditions?.find((c) => c.type === "Ready");
          return ready?.status === "Unknown" && (n!.spec?.taints?.length ?? 0) === 2 && n;
        });
        expect(node.status!.conditions!.find((c) => c.type === "Ready")).toMatchObject({
          reason: "NodeStatusUnknown",
          message: "Kubelet stopped posting node status.",
        });
        expect(node.spec!.taints!.map((t) => `${t.key}:${t.effect}`).sort()).toEqual([
          "node.kubernetes.io/unreachable:NoExecute",
          "node.kubernetes.io/unreachable:NoSchedule",
        ]);
        await eventually("the pod on node-c not ready", async () => {
          const p = await cp.client.get<Pod>("v1", "pods", pod.metadata.namespace, pod.metadata.name!);
          return p?.status?.conditions?.find((c) => c.type === "Ready")?.status === "False";
        });
        // The kubelet comes back: it renews its Lease and posts Ready.
        heartbeats.resume(name);
        await postNodeReady(cp, name);
        await eventually("node-c untainted", async () => {
          const n = await cp.client.get<Node>("v1", "nodes", undefined, name);
          return (n?.spec?.taints ?? []).length === 0;
        });
      }
    });
  },
);

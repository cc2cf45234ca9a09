import { afterAll, beforeAll, expect, it } from "vitest";
import type { Deployment, Pod } from "@klab/api";
import { describeWith } from "../support/prereq.ts";
import {
  type ControlPlane,
  eventually,
  fakeKubelets,
  registerNodes,
  startControlPlane,
} from "./controllers-harness.ts";

describeWith(
  { tools: ["kubectl"] },
  "controllers: Deployments, Services and endpoints with the real kubectl",
  () => {
    let cp: ControlPlane;
    let stopKubelets: () => Promise<void>;

    beforeAll(async () => {
      cp = await startControlPlane();
      await registerNodes(cp, ["node-1", "node-2", "node-3"]);
    });

    afterAll(async () => {
      await stopKubelets?.();
      await cp?.stop();
    });

    it("gives each registered node a /24 pod CIDR from 10.244.0.0/16", async () => {
      const cidrs = await eventually("pod CIDRs on all nodes", async () => {
        const out = await cp.k([
          "get",
          "nodes",
          "-o",
          'jsonpath={range .items[*]}{.spec.podCIDR}{"\\n"}{end}',
        ]);
        const l = out.trim().split("\n").filter(Boolean);
        return l.length === 3 && l;
      });
      expect(new Set(cidrs).size).toBe(3);
      for (const c of cidrs) expect(c).toMatch(/^10\.244\.\d+\.0\/24$/);
    });

    it("spreads `kubectl create deployment --replicas=3` over the three nodes", async () => {
      await cp.k(["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
      const pods = await eventually("3 scheduled pods", async () => {
        const list = (
          await cp.client.list<Pod>("v1", "pods", { namespace: "default", labelSelector: "app=web" })
        ).items;
        return list.length === 3 && list.every((p) => p.spec?.nodeName) && list;
      });
      expect(new Set(pods.map((p) => p.spec!.nodeName)).size).toBe(3);
      const rs = pods[0]!.metadata.ownerReferences![0]!;
      expect(rs.kind).toBe("ReplicaSet");
      const hash = pods[0]!.metadata.labels!["pod-template-hash"]!;
      expect(rs.name).toBe(`web-${hash}`);
      for (const p of pods)
        expect(p.metadata.name).toMatch(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      const events = await cp.k([
        "get",
        "events",
        "--field-selector",
        "reason=Scheduled",
        "-o",
        "jsonpath={.items[*].message}",
      ]);
      expect(events).toMatch(/Successfully assigned default\/web-\S+ to node-[123]/);
    });

    it("lists ready pods in Endpoints, EndpointSlices and describe svc, and rollout status completes", async () => {
      stopKubelets = fakeKubelets(cp);
      await cp.k(["expose", "deployment", "web", "--port=80"]);
      const ips = await eventually("3 pod IPs", async () => {
        const list = (
          await cp.client.list<Pod>("v1", "pods", { namespace: "default", labelSelector: "app=web" })
        ).items;
        const ips = list.map((p) => p.status?.podIP).filter(Boolean) as string[];
        return ips.length === 3 && ips;
      });
      await eventually("endpoints listing the pods", async () => {
        const out = await cp.k([
          "get",
          "endpoints",
          "web",
          "-o",
          "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}",
        ]);
        return ips.every((ip) => out.includes(ip)) && out.endsWith(":80") && out;
      });
      const slices = await cp.k([
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "json",
      ]);
      const items = JSON.parse(slices).items as Array<{
        endpoints: Array<{
          addresses: string[];
          conditions: object;
          nodeName: string;
          targetRef: { kind: string };
        }>;
        ports: Array<{ name: string; port: number }>;
        metadata: { labels: Record<string, string> };
      }>;
      expect(items).toHaveLength(1);
      expect(items[0]!.metadata.labels["endpointslice.kubernetes.io/managed-by"]).toBe(
        "endpointslice-controller.k8s.io",
      );
      expect(items[0]!.ports).toEqual([{ name: "", port: 80, protocol: "TCP" }]);
      expect(items[0]!.endpoints.map((e) => e.addresses[0]).sort()).toEqual([...ips].sort());
      expect(items[0]!.endpoints[0]!.conditions).toEqual({ ready: true, serving: true, terminating: false });
      expect(items[0]!.endpoints[0]!.targetRef.kind).toBe("Pod");
      const describe = await cp.k(["describe", "svc", "web"]);
      const line = describe.split("\n").find((l) => l.startsWith("Endpoints:"))!;
      for (const ip of ips) expect(line).toContain(`${ip}:80`);
      const rollout = await cp.k(["rollout", "status", "deployment/web", "--timeout=30s"]);
      expect(rollout).toContain('deployment "web" successfully rolled out');
      const d = JSON.parse(await cp.k(["get", "deployment", "web", "-o", "json"])) as Deployment;
      expect(d.status).toMatchObject({
        replicas: 3,
        readyReplicas: 3,
        availableReplicas: 3,
        updatedReplicas: 3,
      });
      expect(d.status!.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
        ["Available", "True", "MinimumReplicasAvailable"],
        ["Progressing", "True", "NewReplicaSetAvailable"],
      ]);
      expect(d.metadata.annotations!["deployment.kubernetes.io/revision"]).toBe("1");
    });

    it("scales with `kubectl scale` and rolls out a new image with `kubectl set image`", async () => {
      await cp.k(["scale", "deployment", "web", "--replicas=5"]);
      expect(await cp.k(["rollout", "status", "deployment/web", "--timeout=30s"])).toContain(
        "successfully rolled out",
      );
      await eventually("5 endpoints", async () => {
        const out = await cp.k(["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]);
        return out.trim().split(/\s+/).length === 5;
      });
      await cp.k(["set", "image", "deployment/web", "nginx=nginx:1.27"]);
      const out = await cp.k(["rollout", "status", "deployment/web", "--timeout=60s"]);
      expect(out).toContain('deployment "web" successfully rolled out');
      const rss = JSON.parse(await cp.k(["get", "rs", "-l", "app=web", "-o", "json"])).items as Array<{
        metadata: { annotations: Record<string, string> };
        spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
      }>;
      expect(rss).toHaveLength(2);
      const byRevision = Object.fromEntries(
        rss.map((r) => [r.metadata.annotations["deployment.kubernetes.io/revision"], r]),
      );
      expect(byRevision["1"]!.spec.replicas).toBe(0);
      expect(byRevision["2"]!.spec.replicas).toBe(5);
      expect(byRevision["2"]!.spec.template.spec.containers[0]!.image).toBe("nginx:1.27");
      const pods = (
        await cp.client.list<Pod>("v1", "pods", { namespace: "default", labelSelector: "app=web" })
      ).items;
      await eventually("only new pods left", async () => {
        const list = (
          await cp.client.list<Pod>("v1", "pods", { namespace: "default", labelSelector: "app=web" })
        ).items;
        return list.length === 5 && list.every((p) => p.spec?.containers[0]?.image === "nginx:1.27");
      });
      expect(pods.length).toBeGreaterThanOrEqual(5);
    });

    it("rolls a Recreate Deployment by scaling the old ReplicaSet to zero first", async () => {
      await cp.k(["create", "deployment", "batch", "--image=busybox", "--replicas=2"]);
      await cp.k([
        "patch",
        "deployment",
        "batch",
        "--type=merge",
        "-p",
        '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}',
      ]);
      expect(await cp.k(["rollout", "status", "deployment/batch", "--timeout=30s"])).toContain(
        "successfully rolled out",
      );
      await cp.k(["set", "image", "deployment/batch", "busybox=busybox:1.36"]);
      expect(await cp.k(["rollout", "status", "deployment/batch", "--timeout=30s"])).toContain(
        "successfully rolled out",
      );
      const events = await cp.k([
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=batch,reason=ScalingReplicaSet",
        "-o",
        'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
      ]);
      // Events are named <object>.<hex nanoseconds>, so the list comes in the order they happened.
      const lines = events.trim().split("\n");
      expect(lines[0]).toMatch(/^Scaled up replica set batch-\w+ from 0 to 2$/);
      expect(lines[1]).toMatch(/^Scaled down replica set batch-\w+ from 2 to 0$/);
      expect(lines[2]).toMatch(/^Scaled up replica set batch-\w+ from 0 to 2$/);
    });

    it("orphans or waits for dependents as --cascade asks", async () => {
      await cp.k(["delete", "deployment", "batch", "--cascade=orphan"]);
      const rs = await eventually("ReplicaSets without owner", async () => {
        const list = (
          await cp.client.list<{ metadata: { ownerReferences?: unknown[] } } & Pod>(
            "apps/v1",
            "replicasets",
            { namespace: "default", labelSelector: "app=batch" },
          )
        ).items;
        return list.length === 2 && list.every((r) => !r.metadata.ownerReferences?.length) && list;
      });
      expect(rs).toHaveLength(2);
      // A new Deployment with the same selector adopts them again.
      await cp.k(["create", "deployment", "batch", "--image=busybox:1.36", "--replicas=2"]);
      await eventually("ReplicaSets adopted", async () => {
        const list = (
          await cp.client.list<Pod>("apps/v1", "replicasets", {
            namespace: "default",
            labelSelector: "app=batch",
          })
        ).items;
        return list.length >= 1 && list.every((r) => r.metadata.ownerReferences?.[0]?.kind === "Deployment");
      });
      const r = await cp.kubectl(["delete", "deployment", "batch", "--cascade=foreground", "--timeout=30s"]);
      expect(r.code, r.stderr).toBe(0);
      expect(
        (await cp.client.list("apps/v1", "replicasets", { namespace: "default", labelSelector: "app=batch" }))
          .items,
      ).toEqual([]);
      expect(
        (await cp.client.list("v1", "pods", { namespace: "default", labelSelector: "app=batch" })).items,
      ).toEqual([]);
    });

    it("collects an object whose owner is gone, and leaves one whose owner kind it cannot look up", async () => {
      const cm = (name: string, apiVersion: string, kind: string) =>
        JSON.stringify({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name,
            ownerReferences: [
              { apiVersion, kind, name: "gone", uid: "00000000-0000-0000-0000-000000000001" },
            ],
          },
        });
      await cp.k(["apply", "-f", "-"], cm("owned-by-unknown-kind", "example.com/v1", "Widget"));
      await cp.k(["apply", "-f", "-"], cm("owned-by-missing-deployment", "apps/v1", "Deployment"));
      await eventually(
        "the orphan collected",
        async () => !(await cp.client.get("v1", "configmaps", "default", "owned-by-missing-deployment")),
      );
      expect(await cp.client.get("v1", "configmaps", "default", "owned-by-unknown-kind")).toBeDefined();
    });

    it("deletes a Deployment's ReplicaSets and pods with it", async () => {
      await cp.k(["delete", "deployment", "web"]);
      await eventually("no ReplicaSets and pods left", async () => {
        const rs = (await cp.client.list("apps/v1", "replicasets", { namespace: "default" })).items;
        const pods = (await cp.client.list("v1", "pods", { namespace: "default" })).items;
        return rs.length === 0 && pods.length === 0;
      });
    });
  },
);

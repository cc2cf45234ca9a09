import { describe, expect, it } from "vitest";
import type { Deployment, ReplicaSet } from "@klab/api";
import {
  REVISION,
  deploymentStatus,
  findNewReplicaSet,
  newRSNewReplicas,
  newReplicaSet,
  replicaSetsToCleanUp,
  resolveFenceposts,
  scaleDownOld,
} from "./deployment-logic.ts";

const template = {
  metadata: { labels: { app: "web" } },
  spec: { containers: [{ name: "nginx", image: "nginx" }] },
};

function deploy(replicas: number, extra: Partial<NonNullable<Deployment["spec"]>> = {}): Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default", uid: "d-1", generation: 1 },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: structuredClone(template),
      ...extra,
    },
  };
}

function rs(
  name: string,
  spec: number,
  available: number,
  image = "nginx",
  created = "2026-01-01T00:00:00Z",
  revision = "1",
): ReplicaSet {
  const t = structuredClone(template);
  t.spec.containers[0]!.image = image;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name,
      namespace: "default",
      uid: name,
      creationTimestamp: created,
      annotations: { [REVISION]: revision },
    },
    spec: {
      replicas: spec,
      selector: { matchLabels: { app: "web" } },
      template: { ...t, metadata: { labels: { app: "web", "pod-template-hash": name } } },
    },
    status: { replicas: spec, readyReplicas: available, availableReplicas: available },
  };
}

describe("deployment arithmetic", () => {
  it("resolves 25% surge up and 25% unavailable down, and never both zero", () => {
    expect(resolveFenceposts(deploy(3))).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(resolveFenceposts(deploy(10))).toEqual({ maxSurge: 3, maxUnavailable: 2 });
    const zero = deploy(3, {
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } },
    });
    expect(resolveFenceposts(zero)).toEqual({ maxSurge: 0, maxUnavailable: 1 });
  });

  it("finds the ReplicaSet whose template matches, ignoring the hash label", () => {
    const d = deploy(3);
    expect(findNewReplicaSet(d, [rs("old", 3, 3, "nginx:1.0"), rs("cur", 0, 0)])?.metadata.name).toBe("cur");
  });

  it("names the new ReplicaSet <deployment>-<hash> and labels and selects by the hash", () => {
    const r = newReplicaSet(deploy(3), "5d59d67564", 3, 2);
    expect(r.metadata.name).toBe("web-5d59d67564");
    expect(r.spec!.selector.matchLabels).toEqual({ app: "web", "pod-template-hash": "5d59d67564" });
    expect(r.spec!.template!.metadata!.labels).toEqual({ app: "web", "pod-template-hash": "5d59d67564" });
    expect(r.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "2",
      "deployment.kubernetes.io/desired-replicas": "3",
      "deployment.kubernetes.io/max-replicas": "4",
    });
    expect(r.metadata.ownerReferences![0]).toMatchObject({
      kind: "Deployment",
      name: "web",
      controller: true,
    });
  });

  it("rolls 3 replicas one surge pod at a time while keeping 3 available", () => {
    const d = deploy(3);
    const old = rs("old", 3, 3, "nginx:1.0");
    const cur = rs("cur", 0, 0, "nginx", "2026-01-02T00:00:00Z", "2");
    // surge: one new pod on top of 3 old
    expect(newRSNewReplicas(d, [old, cur], cur)).toBe(1);
    cur.spec!.replicas = 1;
    // the new pod is not available yet: nothing old may go
    expect(scaleDownOld(d, [old, cur], [old], cur)).toEqual([]);
    cur.status = { replicas: 1, readyReplicas: 1, availableReplicas: 1 };
    expect(scaleDownOld(d, [old, cur], [old], cur).map((a) => a.to)).toEqual([2]);
  });

  it("scales down unhealthy old replicas first, within the surge budget", () => {
    const d = deploy(3);
    const old = rs("old", 3, 1, "nginx:1.0");
    const cur = rs("cur", 1, 1, "nginx", "2026-01-02T00:00:00Z", "2");
    // 4 pods exist, 3 must stay available: one unavailable old pod may go.
    expect(scaleDownOld(d, [old, cur], [old], cur).map((a) => a.to)).toEqual([2]);
  });

  it("reports status and kube's Available/Progressing conditions", () => {
    const d = deploy(3);
    const cur = rs("web-abc", 3, 3);
    const now = new Date("2026-01-01T00:01:00Z");
    const created = deploymentStatus(d, [cur], cur, now, { created: true });
    expect(created.conditions!.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ["Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."],
      ["Progressing", "True", "NewReplicaSetCreated", 'Created new replica set "web-abc"'],
    ]);
    const done = deploymentStatus({ ...d, status: created }, [cur], cur, now);
    expect(done).toMatchObject({
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      unavailableReplicas: 0,
      observedGeneration: 1,
    });
    expect(done.conditions![1]).toMatchObject({
      reason: "NewReplicaSetAvailable",
      message: 'ReplicaSet "web-abc" has successfully progressed.',
    });
    const down = deploymentStatus(d, [rs("web-abc", 3, 1)], rs("web-abc", 3, 1), now);
    expect(down.conditions![0]).toMatchObject({
      status: "False",
      reason: "MinimumReplicasUnavailable",
      message: "Deployment does not have minimum availability.",
    });
  });

  it("times out progressing after progressDeadlineSeconds without progress", () => {
    const d = deploy(3, { progressDeadlineSeconds: 60 });
    const cur = rs("web-abc", 3, 1);
    d.status = {
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        {
          type: "Progressing",
          status: "True",
          reason: "ReplicaSetUpdated",
          lastUpdateTime: "2026-01-01T00:00:00Z",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    const s = deploymentStatus(d, [cur], cur, new Date("2026-01-01T00:02:00Z"));
    expect(s.conditions!.find((c) => c.type === "Progressing")).toMatchObject({
      status: "False",
      reason: "ProgressDeadlineExceeded",
      message: 'ReplicaSet "web-abc" has timed out progressing.',
    });
  });

  it("keeps revisionHistoryLimit scaled-down ReplicaSets", () => {
    const d = deploy(1, { revisionHistoryLimit: 1 });
    const olds = [
      rs("a", 0, 0, "v1", undefined, "1"),
      rs("b", 0, 0, "v2", undefined, "2"),
      rs("c", 0, 0, "v3", undefined, "3"),
    ];
    expect(replicaSetsToCleanUp(d, olds).map((r) => r.metadata.name)).toEqual(["a", "b"]);
  });
});

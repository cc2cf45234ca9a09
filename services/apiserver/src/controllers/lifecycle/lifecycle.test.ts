import { describe, expect, it } from "vitest";
import { buildEvent, eventName } from "../events.ts";
import { contentConditions } from "./namespace.ts";

describe("namespace deletion status", () => {
  it("says which resources remain, as kube's namespace controller does", () => {
    const conds = contentConditions(
      new Map([
        ["pods", 2],
        ["deployments.apps", 1],
      ]),
      new Map(),
      "t",
    );
    expect(conds.find((c) => c.type === "NamespaceContentRemaining")).toEqual({
      type: "NamespaceContentRemaining",
      status: "True",
      lastTransitionTime: "t",
      reason: "SomeResourcesRemain",
      message:
        "Some resources are remaining: deployments.apps has 1 resource instances, pods has 2 resource instances",
    });
    const done = contentConditions(new Map(), new Map(), "t");
    expect(done.map((c) => c.status)).toEqual(["False", "False", "False", "False", "False"]);
  });
});

describe("events", () => {
  it("are named <object>.<hex nanoseconds> and carry the recorder's component", () => {
    expect(eventName("web", 1_700_000_000_000, 0)).toBe(
      `web.${(1_700_000_000_000n * 1_000_000n).toString(16)}`,
    );
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "web-1", namespace: "team", uid: "u1" } };
    const ev = buildEvent(
      pod,
      "Warning",
      "FailedScheduling",
      "0/1 nodes are available",
      "default-scheduler",
      new Date("2026-01-01T00:00:00.123Z"),
      1,
    );
    expect(ev).toMatchObject({
      metadata: { namespace: "team" },
      involvedObject: { kind: "Pod", name: "web-1", namespace: "team", uid: "u1", apiVersion: "v1" },
      reason: "FailedScheduling",
      type: "Warning",
      count: 1,
      source: { component: "default-scheduler" },
      firstTimestamp: "2026-01-01T00:00:00Z",
    });
  });
});

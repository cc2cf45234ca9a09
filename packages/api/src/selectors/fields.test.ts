import { describe, expect, it } from "vitest";
import { findResource } from "../resources.ts";
import type { Event, Pod } from "../types.ts";
import { fieldSelectorMatches, fieldSelectorToString, fieldsOf, parseFieldSelector } from "./fields.ts";

const pods = findResource("", "v1", "pods")!;
const services = findResource("", "v1", "services")!;
const deployments = findResource("apps", "v1", "deployments")!;

const pod: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web-1", namespace: "default" },
  spec: { containers: [{ name: "c" }], nodeName: "node-a", restartPolicy: "Always" },
  status: { phase: "Running", podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }] },
};

describe("field selectors", () => {
  it("parse the terms describe node sends", () => {
    expect(
      parseFieldSelector("spec.nodeName=node-a,status.phase!=Succeeded,status.phase!=Failed", pods),
    ).toEqual([
      { field: "spec.nodeName", operator: "=", value: "node-a" },
      { field: "status.phase", operator: "!=", value: "Failed" },
      { field: "status.phase", operator: "!=", value: "Succeeded" },
    ]);
  });

  it("match pods on node, phase and IP", () => {
    expect(fieldSelectorMatches(parseFieldSelector("spec.nodeName=node-a,status.phase!=Failed"), pod)).toBe(
      true,
    );
    expect(fieldSelectorMatches(parseFieldSelector("status.podIP=10.244.1.5"), pod)).toBe(true);
    expect(fieldSelectorMatches(parseFieldSelector("spec.hostNetwork=false"), pod)).toBe(true);
    expect(fieldSelectorMatches(parseFieldSelector("metadata.name==web-2"), pod)).toBe(false);
    expect(fieldSelectorMatches([], pod)).toBe(true);
    expect(fieldSelectorMatches(parseFieldSelector("spec.host=node-a", pods), pod)).toBe(true);
  });

  it("match events on their involved object, as describe asks", () => {
    const ev: Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web-1.1", namespace: "default" },
      involvedObject: { kind: "Pod", name: "web-1", namespace: "default", uid: "u1" },
      reason: "Scheduled",
      type: "Normal",
      source: { component: "default-scheduler" },
    };
    const sel = parseFieldSelector(
      "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1,source=default-scheduler",
    );
    expect(fieldSelectorMatches(sel, ev)).toBe(true);
    expect(fieldsOf(ev)["reason"]).toBe("Scheduled");
  });

  it("refuse fields the kind does not support, with kube's messages", () => {
    expect(() => parseFieldSelector("spec.foo=x", pods)).toThrow("field label not supported: spec.foo");
    expect(() => parseFieldSelector("spec.type=NodePort", services)).not.toThrow();
    expect(() => parseFieldSelector("spec.replicas=1", deployments)).toThrow(
      '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
    );
    expect(() => fieldSelectorMatches(parseFieldSelector("spec.foo=x"), pod)).toThrow(
      "field label not supported: spec.foo",
    );
  });

  it("refuse malformed selectors", () => {
    expect(() => parseFieldSelector("metadata.name")).toThrow(
      "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
    );
    expect(() => parseFieldSelector("a=b=c")).toThrow(
      "invalid field selector: unescaped character in value: 61",
    );
    expect(() => parseFieldSelector("a=b\\x")).toThrow(
      "invalid field selector: invalid escape sequence: \\x",
    );
  });

  it("unescape and re-escape values", () => {
    const sel = parseFieldSelector("metadata.name=a\\,b\\=c");
    expect(sel[0].value).toBe("a,b=c");
    expect(fieldSelectorToString(sel)).toBe("metadata.name=a\\,b\\=c");
  });
});

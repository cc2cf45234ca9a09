import { describe, expect, it } from "vitest";
import { decodeKubernetesProtobuf, ProtobufError, pruneUnknownFields } from "./decode.ts";

// A minimal protobuf writer, to build the bodies Go clients send.
const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const bytes = (field: number, payload: Buffer | string) => {
  const p = typeof payload === "string" ? Buffer.from(payload) : payload;
  return Buffer.from([...varint((field << 3) | 2), ...varint(p.length), ...p]);
};
const num = (field: number, n: number) => Buffer.from([...varint(field << 3), ...varint(n)]);
const msg = (...parts: Buffer[]) => Buffer.concat(parts);
const envelope = (apiVersion: string, kind: string, raw: Buffer) =>
  Buffer.concat([
    Buffer.from("k8s\0"),
    bytes(1, msg(bytes(1, apiVersion), bytes(2, kind))),
    bytes(2, raw),
    bytes(3, ""),
    bytes(4, ""),
  ]);

describe("Kubernetes protobuf bodies", () => {
  it("decodes a Deployment as kubectl create deployment sends it", () => {
    const labels = bytes(11, msg(bytes(1, "app"), bytes(2, "web")));
    const meta = msg(bytes(1, "web"), bytes(3, ""), num(7, 0), labels, bytes(8, msg()));
    const container = msg(
      bytes(1, "nginx"),
      bytes(2, "nginx"),
      bytes(6, msg(num(3, 80), bytes(4, "TCP"))),
      bytes(8, msg()),
    );
    const podSpec = msg(
      bytes(2, container),
      bytes(3, ""),
      bytes(1, msg(bytes(1, "v"), bytes(2, msg(bytes(2, msg()))))),
    );
    const template = msg(bytes(1, msg(labels)), bytes(2, podSpec));
    const spec = msg(
      num(1, 3),
      bytes(2, msg(bytes(1, msg(bytes(1, "app"), bytes(2, "web"))))),
      bytes(3, template),
    );
    const strategy = msg(bytes(1, "RollingUpdate"), bytes(2, msg(bytes(1, msg(num(1, 1), bytes(3, "25%"))))));
    const obj = decodeKubernetesProtobuf(
      envelope("apps/v1", "Deployment", msg(bytes(1, meta), bytes(2, msg(spec, bytes(4, strategy))))),
    );
    expect(obj).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", labels: { app: "web" } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            volumes: [{ name: "v", emptyDir: {} }],
            containers: [
              {
                name: "nginx",
                image: "nginx",
                ports: [{ containerPort: 80, protocol: "TCP" }],
                resources: {},
              },
            ],
          },
        },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%" } },
      },
    });
  });

  it("decodes the v1 DeleteOptions kubectl drain sends, from meta/v1's schema", () => {
    const obj = decodeKubernetesProtobuf(
      envelope("v1", "DeleteOptions", msg(num(1, 30), bytes(4, "Background"))),
    );
    expect(obj).toEqual({
      apiVersion: "v1",
      kind: "DeleteOptions",
      gracePeriodSeconds: 30,
      propagationPolicy: "Background",
    });
  });

  it("keeps a zero that a Go pointer field carries", () => {
    const obj = decodeKubernetesProtobuf(
      envelope("apps/v1", "Deployment", msg(bytes(1, msg(bytes(1, "z"))), bytes(2, num(1, 0)))),
    );
    expect(obj.spec).toEqual({ replicas: 0 });
  });

  it("rejects what is not a Kubernetes protobuf body", () => {
    expect(() => decodeKubernetesProtobuf(Buffer.from("{}"))).toThrow(ProtobufError);
    expect(() => decodeKubernetesProtobuf(Buffer.from("k8s\0\x0a\xff"))).toThrow(ProtobufError);
    expect(() => decodeKubernetesProtobuf(envelope("v1", "Widget", msg()))).toThrow(
      /no protobuf schema for v1, Kind=Widget/,
    );
  });
});

describe("unknown fields", () => {
  it("finds and drops fields the kind does not have, through lists, maps and inline members", () => {
    const svc = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "s", labels: { any: "key" }, bogus: 1 },
      spec: { ports: [{ port: 80, nme: "x" }], selector: { a: "b" } },
    };
    expect(pruneUnknownFields(svc)).toEqual(["metadata.bogus", "spec.ports[0].nme"]);
    expect(svc.metadata).toEqual({ name: "s", labels: { any: "key" } });
    const ing = {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      spec: { rules: [{ host: "a", http: { paths: [{ path: "/", pathTyp: "Prefix" }] } }] },
    };
    expect(pruneUnknownFields(ing)).toEqual(["spec.rules[0].http.paths[0].pathTyp"]);
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      spec: { volumes: [{ name: "v", configMap: { name: "c", itms: [] } }] },
    };
    expect(pruneUnknownFields(pod)).toEqual(["spec.volumes[0].configMap.itms"]);
    expect(pruneUnknownFields({ apiVersion: "v1", kind: "Widget" })).toBeUndefined();
  });
});

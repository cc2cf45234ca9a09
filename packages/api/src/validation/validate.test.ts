import { describe, expect, it } from "vitest";
import { applyDefaults } from "../defaults.ts";
import { fieldErrorMessage, invalidStatus } from "../field.ts";
import { resourceForKind } from "../resources.ts";
import type { KubeObject } from "../types.ts";
import { preserveAllocatedServiceFields } from "./core.ts";
import { validateObject } from "./validate.ts";

function messages(obj: unknown, old?: unknown): string[] {
  const o = JSON.parse(JSON.stringify(obj)) as KubeObject;
  applyDefaults(o);
  let prev: KubeObject | undefined;
  if (old) {
    prev = JSON.parse(JSON.stringify(old)) as KubeObject;
    applyDefaults(prev);
  }
  return validateObject(o, prev).map(fieldErrorMessage);
}

const svc = (spec: Record<string, unknown>, name = "web") => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: "default" },
  spec,
});

const deploy = (labels: Record<string, string>, selector: unknown) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "default" },
  spec: {
    selector,
    template: { metadata: { labels }, spec: { containers: [{ name: "web", image: "nginx" }] } },
  },
});

describe("names", () => {
  it("pods need an RFC 1123 subdomain", () => {
    expect(
      messages({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "Web_1", namespace: "default" },
        spec: { containers: [{ name: "c", image: "nginx" }] },
      }),
    ).toEqual([
      `metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    ]);
  });

  it("services need a DNS-1035 label", () => {
    expect(messages(svc({ ports: [{ port: 80 }] }, "1web"))).toEqual([
      `metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    ]);
  });

  it("namespaces need an RFC 1123 label, and cluster-scoped kinds refuse a namespace", () => {
    expect(messages({ apiVersion: "v1", kind: "Namespace", metadata: { name: "a.b" } })).toEqual([
      `metadata.name: Invalid value: "a.b": must not contain dots`,
    ]);
    expect(messages({ apiVersion: "v1", kind: "Node", metadata: { name: "n1", namespace: "x" } })).toEqual([
      "metadata.namespace: Forbidden: not allowed on this type",
    ]);
    expect(messages({ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "default" } })).toEqual([
      "metadata.name: Required value: name or generateName is required",
    ]);
  });

  it("labels and annotations are checked", () => {
    const m = messages({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "default", labels: { "a/b/c": "x", ok: "-bad" } },
    });
    expect(m[0]).toMatch(/^metadata\.labels: Invalid value: "a\/b\/c": a qualified name must consist of/);
    expect(m[1]).toMatch(/^metadata\.labels: Invalid value: "-bad": a valid label must be an empty string/);
    const big = "x".repeat(300 * 1024);
    expect(
      messages({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "c", namespace: "d", annotations: { a: big } },
      }),
    ).toEqual(["metadata.annotations: Too long: may not be more than 262144 bytes"]);
  });
});

describe("Services", () => {
  it("a valid ClusterIP service passes", () => {
    expect(messages(svc({ selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] }))).toEqual([]);
  });

  it("ports are required unless headless or ExternalName", () => {
    expect(messages(svc({ selector: { app: "web" } }))).toEqual(["spec.ports: Required value"]);
    expect(messages(svc({ clusterIP: "None", selector: { app: "web" } }))).toEqual([]);
    expect(messages(svc({ type: "ExternalName", externalName: "db.example.com" }))).toEqual([]);
  });

  it("ExternalName requires externalName", () => {
    expect(messages(svc({ type: "ExternalName" }))).toEqual(["spec.externalName: Required value"]);
  });

  it("checks port numbers, names, protocols and duplicates", () => {
    expect(
      messages(
        svc({
          ports: [
            { name: "http", port: 0 },
            { name: "http", port: 80, protocol: "ICMP" },
            { port: 80, targetPort: "Bad_Name" },
          ],
        }),
      ),
    ).toEqual([
      "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
      'spec.ports[1].name: Duplicate value: "http"',
      'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
      "spec.ports[2].name: Required value",
      'spec.ports[2].targetPort: Invalid value: "Bad_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ]);
    expect(
      messages(
        svc({
          ports: [
            { name: "a", port: 80 },
            { name: "b", port: 80 },
          ],
        }),
      ),
    ).toEqual([
      `spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
    ]);
  });

  it("type, sessionAffinity and clusterIP formats", () => {
    expect(messages(svc({ type: "Foo", ports: [{ port: 80 }] }))).toEqual([
      'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]);
    expect(messages(svc({ sessionAffinity: "Sticky", ports: [{ port: 80 }] }))).toEqual([
      'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
    ]);
    expect(messages(svc({ clusterIP: "10.96.0.300", ports: [{ port: 80 }] }))).toEqual([
      'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ]);
    expect(messages(svc({ ports: [{ port: 80, nodePort: 30080 }] }))).toEqual([
      "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    ]);
    expect(messages(svc({ type: "NodePort", clusterIP: "None", ports: [{ port: 80 }] }))).toEqual([
      `spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`,
    ]);
  });

  it("clusterIP may not change on update, and is kept when an update leaves it out", () => {
    const old = svc({ clusterIP: "10.96.0.5", ports: [{ port: 80 }] });
    expect(messages(svc({ clusterIP: "10.96.0.6", ports: [{ port: 80 }] }), old)).toEqual([
      'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.6"}: may not change once set',
    ]);
    const next = svc({ type: "NodePort", ports: [{ port: 80 }] }) as unknown as KubeObject;
    const prev = svc({ type: "NodePort", clusterIP: "10.96.0.5", ports: [{ port: 80, nodePort: 30080 }] });
    applyDefaults(prev as unknown as KubeObject);
    applyDefaults(next);
    preserveAllocatedServiceFields(next as never, prev as never);
    expect(
      (next as unknown as { spec: { clusterIPs: string[]; ports: Array<{ nodePort: number }> } }).spec,
    ).toMatchObject({ clusterIP: "10.96.0.5", clusterIPs: ["10.96.0.5"], ports: [{ nodePort: 30080 }] });
    expect(validateObject(next, prev as unknown as KubeObject)).toEqual([]);
  });

  it("builds the 422 Status kube-apiserver returns", () => {
    const rt = resourceForKind("v1", "Service")!;
    const one = invalidStatus(rt, "web", [
      {
        type: "FieldValueInvalid",
        field: "spec.ports[0].nodePort",
        badValue: 29999,
        detail: "provided port is not in the valid range. The range of valid ports is 30000-32767",
      },
    ]);
    expect(one).toEqual({
      apiVersion: "v1",
      kind: "Status",
      metadata: {},
      status: "Failure",
      message:
        'Service "web" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767',
      reason: "Invalid",
      details: {
        name: "web",
        kind: "Service",
        causes: [
          {
            reason: "FieldValueInvalid",
            message:
              "Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767",
            field: "spec.ports[0].nodePort",
          },
        ],
      },
      code: 422,
    });
    const o = JSON.parse(JSON.stringify(svc({ selector: {} })));
    applyDefaults(o);
    o.spec.type = "Foo";
    const two = invalidStatus(rt, "web", validateObject(o));
    expect(two.message).toBe(
      'Service "web" is invalid: [spec.ports: Required value, spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]',
    );
  });
});

describe("workloads", () => {
  it("a Deployment's selector must match its template labels", () => {
    expect(messages(deploy({ app: "web" }, { matchLabels: { app: "api" } }))).toEqual([
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]);
    expect(messages(deploy({ app: "web" }, { matchLabels: { app: "web" } }))).toEqual([]);
  });

  it("a Deployment needs a selector and containers with images", () => {
    const d = deploy({ app: "web" }, undefined) as {
      spec: { template: { spec: { containers: unknown[] } } };
    };
    d.spec.template.spec.containers = [{ name: "Web" }];
    expect(messages(d)).toEqual([
      "spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
      `spec.template.spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
      "spec.template.spec.containers[0].image: Required value",
    ]);
    const rt = resourceForKind("apps/v1", "Deployment")!;
    expect(
      invalidStatus(rt, "web", [{ type: "FieldValueRequired", field: "spec.selector", detail: "" }]).message,
    ).toBe('Deployment.apps "web" is invalid: spec.selector: Required value');
  });

  it("a Deployment's selector is immutable", () => {
    const old = deploy({ app: "web" }, { matchLabels: { app: "web" } });
    const now = deploy({ app: "web", v: "2" }, { matchLabels: { app: "web", v: "2" } });
    expect(messages(now, old)).toEqual([
      'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
    ]);
  });

  it("rolling update bounds", () => {
    const d = deploy({ app: "web" }, { matchLabels: { app: "web" } }) as Record<string, unknown> & {
      spec: Record<string, unknown>;
    };
    d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } };
    d.spec.replicas = -1;
    expect(messages(d)).toEqual([
      "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0',
    ]);
  });

  it("a DaemonSet with a mismatched selector", () => {
    expect(
      messages({
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: "kube-proxy", namespace: "kube-system" },
        spec: {
          selector: { matchLabels: { k8s: "proxy" } },
          template: {
            metadata: { labels: { k8s: "other" } },
            spec: { containers: [{ name: "p", image: "x" }] },
          },
        },
      }),
    ).toEqual([
      'spec.template.metadata.labels: Invalid value: map[string]string{"k8s":"other"}: `selector` does not match template `labels`',
    ]);
  });
});

describe("Pods", () => {
  const pod = (spec: Record<string, unknown>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default" },
    spec,
  });

  it("containers are required", () => {
    expect(messages(pod({}))).toEqual(["spec.containers: Required value"]);
  });

  it("checks ports, env and probes", () => {
    expect(
      messages(
        pod({
          containers: [
            {
              name: "c",
              image: "nginx",
              ports: [
                { containerPort: 70000 },
                { containerPort: 80, name: "http" },
                { containerPort: 81, name: "http" },
              ],
              env: [{ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.nope" } } }],
              livenessProbe: { httpGet: { port: 80 }, successThreshold: 2 },
              readinessProbe: {},
            },
          ],
        }),
      ),
    ).toEqual([
      "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
      'spec.containers[0].ports[2].name: Duplicate value: "http"',
      'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.nope": supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
      "spec.containers[0].readinessProbe: Required value: must specify a handler type",
      "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    ]);
  });

  it("only images may change on update, and binding to a node is allowed", () => {
    const old = pod({ containers: [{ name: "c", image: "nginx:1" }] });
    expect(messages(pod({ containers: [{ name: "c", image: "nginx:2" }] }), old)).toEqual([]);
    expect(messages(pod({ containers: [{ name: "c", image: "nginx:1" }], nodeName: "node-a" }), old)).toEqual(
      [],
    );
    const m = messages(pod({ containers: [{ name: "c", image: "nginx:1" }], hostNetwork: true }), old);
    expect(m).toHaveLength(1);
    expect(m[0]).toMatch(
      /^spec: Forbidden: pod updates may not change fields other than `spec.containers\[\*\].image`/,
    );
  });
});

describe("networking", () => {
  const np = (spec: Record<string, unknown>) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "p", namespace: "default" },
    spec: { podSelector: {}, ...spec },
  });

  it("NetworkPolicy ports, endPort and ipBlock", () => {
    expect(
      messages(
        np({
          ingress: [
            {
              ports: [
                { port: 8080, endPort: 80 },
                { port: "http", endPort: 90 },
                { endPort: 90 },
                { protocol: "ICMP" },
              ],
              from: [
                { ipBlock: { cidr: "10.0.0.0/8", except: ["11.0.0.0/16", "10.0.0.0/8"] } },
                { ipBlock: { cidr: "10.0.0.0/33" } },
                {},
                { ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} },
              ],
            },
          ],
        }),
      ),
    ).toEqual([
      "spec.ingress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`",
      "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
      "spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is not specified",
      'spec.ingress[0].ports[3].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
      'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`',
      'spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
      'spec.ingress[0].from[1].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      "spec.ingress[0].from[2]: Required value: must specify a peer",
      "spec.ingress[0].from[3]: Forbidden: may not specify both ipBlock and another peer",
    ]);
  });

  it("Ingress paths and backends", () => {
    expect(
      messages({
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name: "web-ingress", namespace: "default" },
        spec: {
          rules: [
            {
              host: "10.0.0.1",
              http: {
                paths: [
                  { path: "/", backend: { service: { name: "web", port: { number: 80 } } } },
                  { path: "api", pathType: "Prefix", backend: { service: { name: "api" } } },
                  { path: "/x", pathType: "Regex", backend: {} },
                ],
              },
            },
          ],
        },
      }),
    ).toEqual([
      'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
      "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
      'spec.rules[0].http.paths[1].path: Invalid value: "api": must be an absolute path',
      "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
      'spec.rules[0].http.paths[2].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
      'spec.rules[0].http.paths[2].backend: Invalid value: "": resource or service backend is required',
    ]);
  });

  it("EndpointSlice addresses and ports", () => {
    expect(
      messages({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: { name: "web-abc", namespace: "default" },
        addressType: "IPv4",
        endpoints: [{ addresses: ["10.244.1.5"] }, { addresses: ["fe80::1"] }, { addresses: [] }],
        ports: [
          { name: "http", port: 80 },
          { name: "http", port: 70000 },
        ],
      }),
    ).toEqual([
      'endpoints[1].addresses[0]: Invalid value: "fe80::1": must be a valid IPv4 address',
      "endpoints[2].addresses: Required value: must contain at least 1 address",
      'ports[1].name: Duplicate value: "http"',
      "ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
    ]);
  });

  it("ConfigMap and Secret keys", () => {
    expect(
      messages({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "c", namespace: "d" },
        data: { "a b": "x", "..x": "y" },
      }),
    ).toEqual([
      `data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
      `data[..x]: Invalid value: "..x": must not start with '..'`,
    ]);
    expect(
      messages({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "tls", namespace: "d" },
        type: "kubernetes.io/tls",
        data: {},
      }),
    ).toEqual(["data[tls.crt]: Required value", "data[tls.key]: Required value"]);
  });
});

describe("container resources", () => {
  it("requests may not exceed limits", () => {
    expect(
      messages({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace: "d" },
        spec: {
          containers: [
            { name: "c", image: "x", resources: { requests: { cpu: "2" }, limits: { cpu: "500m" } } },
          ],
        },
      }),
    ).toEqual([
      'spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 500m',
    ]);
  });
});

describe("changing a Service's type", () => {
  const stored = () => {
    const s = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "default" },
      spec: {
        type: "NodePort",
        clusterIP: "10.96.0.9",
        selector: { app: "web" },
        ports: [{ port: 80, nodePort: 30080 }],
      },
    } as unknown as KubeObject;
    applyDefaults(s);
    return s;
  };

  it("NodePort to ClusterIP drops the nodePorts and externalTrafficPolicy the user left alone", () => {
    const old = stored();
    const next = structuredClone(old) as unknown as { spec: Record<string, unknown> };
    next.spec.type = "ClusterIP";
    preserveAllocatedServiceFields(next as never, old as never);
    applyDefaults(next as unknown as KubeObject);
    expect(validateObject(next as unknown as KubeObject, old)).toEqual([]);
    expect(next.spec).toMatchObject({
      clusterIP: "10.96.0.9",
      ports: [{ port: 80, protocol: "TCP", targetPort: 80 }],
    });
    expect(next.spec.externalTrafficPolicy).toBeUndefined();
  });

  it("ClusterIP to ExternalName releases the clusterIP and families", () => {
    const old = stored();
    const next = structuredClone(old) as unknown as { spec: Record<string, unknown> };
    next.spec.type = "ExternalName";
    next.spec.externalName = "db.example.com";
    preserveAllocatedServiceFields(next as never, old as never);
    applyDefaults(next as unknown as KubeObject);
    expect(validateObject(next as unknown as KubeObject, old).map(fieldErrorMessage)).toEqual([]);
    expect(next.spec.clusterIP).toBeUndefined();
    expect(next.spec.ipFamilies).toBeUndefined();
  });

  it("a nodePort the user set stays and is refused for ClusterIP", () => {
    const old = stored();
    const next = structuredClone(old) as unknown as {
      spec: { type: string; ports: Array<{ nodePort: number }> };
    };
    next.spec.type = "ClusterIP";
    next.spec.ports[0].nodePort = 30081;
    preserveAllocatedServiceFields(next as never, old as never);
    expect(validateObject(next as unknown as KubeObject, old).map(fieldErrorMessage)).toContain(
      "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    );
  });
});

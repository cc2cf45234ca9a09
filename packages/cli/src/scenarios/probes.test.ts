import type { EndpointSlice, KubeObject, Pod } from "@klab/api";
import { describe, expect, it } from "vitest";
import {
  certificateNames,
  countReadyEndpoints,
  curlArgs,
  judgeDns,
  judgeHttp,
  judgePods,
  judgeTls,
  parseCurl,
  parseDig,
} from "./probes.ts";
import { containsDesired, crashLooping, replacementFor } from "./reset.ts";
import { stateFromData, stateToData } from "./state.ts";
import { shellLine } from "./engine.ts";
import type { HttpProbe } from "./model.ts";

const http = (o: Partial<HttpProbe> = {}): HttpProbe => ({
  from: { host: true },
  url: "http://shop.example.com/shop/cart",
  expectStatus: 200,
  count: 1,
  timeoutSeconds: 5,
  ...o,
});

describe("http probes", () => {
  it("from the host pin the name to the published port with --resolve", () => {
    const args = curlArgs("http://shop.example.com/shop/cart", 5, { port: 18080, address: "127.0.0.1" });
    expect(args.slice(-3)).toEqual([
      "--resolve",
      "shop.example.com:18080:127.0.0.1",
      "http://shop.example.com:18080/shop/cart",
    ]);
    const tls = curlArgs("https://myapp.com/api", 5, { port: 18443, address: "127.0.0.1" });
    expect(tls).toContain("-k");
    expect(tls.at(-1)).toBe("https://myapp.com:18443/api");
    expect(curlArgs("http://backend/", 3).at(-1)).toBe("http://backend/");
  });

  it("read the status curl writes after the body", () => {
    const ok = parseCurl({ code: 0, stdout: "backend-1\n@@klab-http-status=200", stderr: "" });
    expect(ok).toEqual({ status: 200, body: "backend-1" });
    const refused = parseCurl({
      code: 7,
      stdout: "\n@@klab-http-status=000",
      stderr:
        "curl: (7) Failed to connect to backend port 80: Connection refused\ncommand terminated with exit code 7\n",
    });
    expect(refused.status).toBe(0);
    expect(refused.error).toBe("curl: (7) Failed to connect to backend port 80: Connection refused");
    expect(parseCurl({ code: 1, stdout: "", stderr: "no running pod in a matches app=x" }).error).toBe(
      "no running pod in a matches app=x",
    );
  });

  it("pass when every answer has the status and the body, and enough answers differ", () => {
    const a = (body: string, status = 200) => ({ status, body });
    expect(judgeHttp(http(), [a("shop")]).ok).toBe(true);
    expect(judgeHttp(http(), [a("default backend - 404", 404)])).toEqual({
      ok: false,
      detail: "http://shop.example.com/shop/cart: HTTP 404",
    });
    expect(judgeHttp(http({ bodyContains: "shop" }), [a("nginx")]).ok).toBe(false);
    expect(judgeHttp(http({ count: 3, minDistinctBodies: 2 }), [a("p1"), a("p1"), a("p1")]).ok).toBe(false);
    expect(judgeHttp(http({ count: 3, minDistinctBodies: 2 }), [a("p1"), a("p2"), a("p1")]).ok).toBe(true);
  });

  it("with expectStatus 0 pass only when nothing answers", () => {
    const p = http({ expectStatus: 0 });
    expect(judgeHttp(p, [{ status: 0, body: "", error: "curl: (28) timed out" }]).ok).toBe(true);
    expect(judgeHttp(p, [{ status: 200, body: "hello" }]).ok).toBe(false);
  });
});

describe("dns probes", () => {
  const dig = (status: string, answers: string[]) => ({
    code: 0,
    stderr: "",
    stdout: `; <<>> DiG 9.18 <<>> +search backend\n;; ->>HEADER<<- opcode: QUERY, status: ${status}, id: 1\n\n${
      answers.length ? `;; ANSWER SECTION:\n${answers.join("\n")}\n\n` : ""
    };; Query time: 1 msec\n`,
  });
  const probe = { from: { node: "node-1" }, name: "backend", type: "A", timeoutSeconds: 2 } as const;

  it("read dig's status and answer section", () => {
    const a = parseDig(dig("NOERROR", ["backend.scn.svc.cluster.local. 30 IN A 10.96.4.2"]));
    expect(a).toEqual({ rcode: "NOERROR", answers: ["backend.scn.svc.cluster.local. 30 IN A 10.96.4.2"] });
    expect(judgeDns({ ...probe, expect: "answer" }, a).ok).toBe(true);
    expect(judgeDns({ ...probe, expect: "nxdomain" }, a).ok).toBe(false);
  });

  it("count a timeout and an empty NOERROR as no answer", () => {
    const timeout = parseDig({
      code: 9,
      stdout: ";; connection timed out; no servers could be reached\n",
      stderr: "",
    });
    expect(timeout.rcode).toBe("TIMEOUT");
    expect(judgeDns({ ...probe, expect: "answer" }, timeout)).toEqual({
      ok: false,
      detail: "backend A: no answer (timed out)",
    });
    expect(judgeDns({ ...probe, expect: "answer" }, parseDig(dig("NOERROR", []))).ok).toBe(false);
    expect(judgeDns({ ...probe, expect: "nxdomain" }, parseDig(dig("NXDOMAIN", []))).ok).toBe(true);
  });
});

describe("API probes", () => {
  const pod = (name: string, ready: boolean, extra: Partial<Pod["metadata"]> = {}): Pod =>
    ({
      metadata: { name, ...extra },
      status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
    }) as Pod;

  it("count Ready pods, not terminating ones, within min and max", () => {
    const pods = [
      pod("a", true),
      pod("b", false),
      pod("c", true, { deletionTimestamp: "2026-01-01T00:00:00Z" }),
    ];
    expect(judgePods({ namespace: "n", selector: "app=x", minReady: 1 }, pods)).toEqual({
      ok: true,
      detail: "n pods app=x: 1/2 Ready",
    });
    expect(judgePods({ namespace: "n", selector: "app=x", minReady: 2 }, pods).ok).toBe(false);
    expect(judgePods({ namespace: "n", selector: "app=x", minReady: 0, maxReady: 0 }, pods).ok).toBe(false);
  });

  it("count ready endpoints, a nil ready condition counting as ready", () => {
    const slice = {
      endpoints: [
        { addresses: ["10.244.1.2"], conditions: { ready: true } },
        { addresses: ["10.244.1.3"], conditions: { ready: false } },
        { addresses: ["10.244.1.4"] },
      ],
    } as unknown as EndpointSlice;
    expect(countReadyEndpoints([slice, { endpoints: null } as unknown as EndpointSlice])).toBe(2);
  });

  it("name a certificate by its subject, alternative names and issuer", () => {
    const names = certificateNames({
      subject: { O: "Acme Co", CN: "Kubernetes Ingress Controller Fake Certificate" },
      issuer: { O: "Acme Co", CN: "Kubernetes Ingress Controller Fake Certificate" },
      subjectaltname: "DNS:ingress.local",
    } as never);
    expect(names.subject).toBe(
      "O=Acme Co, CN=Kubernetes Ingress Controller Fake Certificate; DNS:ingress.local",
    );
    expect(
      judgeTls(
        { host: "shop.example.com", expectSubjectContains: "shop.example.com", timeoutSeconds: 5 },
        names,
      ).ok,
    ).toBe(false);
    expect(judgeTls({ host: "x", expectSubjectContains: "ingress.local", timeoutSeconds: 5 }, names).ok).toBe(
      true,
    );
  });
});

describe("the generic reset", () => {
  it("sees no difference where the server only added defaults", () => {
    const desired = {
      spec: { replicas: 2, template: { spec: { containers: [{ name: "c", args: ["-conf", "x"] }] } } },
    };
    const live = {
      metadata: { resourceVersion: "5" },
      spec: {
        replicas: 2,
        revisionHistoryLimit: 10,
        template: {
          spec: { containers: [{ name: "c", args: ["-conf", "x"], imagePullPolicy: "IfNotPresent" }] },
        },
      },
    };
    expect(containsDesired(desired, live)).toBe(true);
    expect(containsDesired(desired, { ...live, spec: { ...live.spec, replicas: 0 } })).toBe(false);
    expect(containsDesired({ data: { Corefile: "a" } }, { data: { Corefile: "b" } })).toBe(false);
    expect(containsDesired({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
  });

  it("replaces a Service keeping the addresses and node ports the server allocated", () => {
    const desired = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx" },
      spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80 }] },
    } as unknown as KubeObject;
    const live = {
      ...desired,
      metadata: { ...desired.metadata, resourceVersion: "42" },
      spec: {
        type: "NodePort",
        clusterIP: "10.96.0.20",
        clusterIPs: ["10.96.0.20"],
        ports: [{ name: "http", port: 80, nodePort: 31000 }],
      },
    } as unknown as KubeObject;
    const r = replacementFor(desired, live) as unknown as {
      metadata: { resourceVersion: string };
      spec: Record<string, unknown>;
    };
    expect(r.metadata.resourceVersion).toBe("42");
    expect(r.spec).toMatchObject({
      type: "LoadBalancer",
      clusterIP: "10.96.0.20",
      ports: [{ name: "http", port: 80, nodePort: 31000 }],
    });
    expect((desired as unknown as { spec: { clusterIP?: string } }).spec.clusterIP).toBeUndefined();
  });

  it("restarts crash-looping system pods", () => {
    const p = (state: object) =>
      ({ metadata: { name: "x" }, status: { containerStatuses: [{ state }] } }) as unknown as Pod;
    expect(crashLooping(p({ waiting: { reason: "CrashLoopBackOff" } }))).toBe(true);
    expect(crashLooping(p({ running: { startedAt: "t" } }))).toBe(false);
  });
});

describe("the active exercise's state", () => {
  it("round-trips through the ConfigMap's data and tolerates junk", () => {
    const s = { id: "selector-mismatch", started: "2026-11-26T19:00:00.000Z", hintsShown: 2 };
    expect(stateFromData(stateToData(s))).toEqual(s);
    expect(stateFromData({})).toBeUndefined();
    expect(stateFromData({ id: "x", hintsShown: "many" })).toEqual({ id: "x", started: "", hintsShown: 0 });
  });

  it("prints commands the way a learner types them", () => {
    expect(shellLine(["-n", "scn-a", "patch", "svc", "b", "-p", '{"spec":{}}'])).toBe(
      `-n scn-a patch svc b -p '{"spec":{}}'`,
    );
  });
});

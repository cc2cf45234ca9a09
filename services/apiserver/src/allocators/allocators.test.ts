import { describe, expect, it } from "vitest";
import type { Service } from "@klab/api";
import { Bitmap } from "./bitmap.ts";
import { ServiceIPAllocator } from "./service-ips.ts";
import { NodePortAllocator } from "./node-ports.ts";
import { ServiceAllocator } from "./service-allocation.ts";

const live = { dryRun: false };

function svc(name: string, spec: Service["spec"]): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" }, spec };
}

function newAllocator(): ServiceAllocator {
  return new ServiceAllocator({ serviceCIDR: "10.96.0.0/12", nodePortRange: { base: 30000, size: 2768 } });
}

describe("bitmap", () => {
  it("hands out every index once and then reports full", () => {
    const b = new Bitmap(70);
    const seen = new Set<number>();
    for (let i = 0; i < 70; i++) {
      const x = b.findFree(0, 70);
      expect(b.allocate(x)).toBe(true);
      seen.add(x);
    }
    expect(seen.size).toBe(70);
    expect(b.findFree(0, 70)).toBe(-1);
    b.release(33);
    expect(b.findFree(0, 70)).toBe(33);
  });
});

describe("ClusterIP allocation", () => {
  it("honours an explicit IP and refuses it a second time with kube's words", () => {
    const a = new ServiceIPAllocator("10.96.0.0/12");
    expect(a.allocate("10.96.0.10")).toEqual({ ok: true });
    expect(a.allocate("10.96.0.10")).toEqual({ ok: false, error: "provided IP is already allocated" });
    expect(a.allocate("10.112.0.1")).toEqual({
      ok: false,
      error: "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
    });
  });

  it("never hands out the network or broadcast address, and random IPs avoid the static band", () => {
    const a = new ServiceIPAllocator("10.96.0.0/12");
    expect(a.allocate("10.96.0.0").ok).toBe(false);
    expect(a.allocate("10.111.255.255").ok).toBe(false);
    for (let i = 0; i < 1000; i++) {
      const ip = a.allocateNext()!;
      expect(ip.startsWith("10.96.0.")).toBe(false);
    }
  });

  it("fills a small range completely, lower band last", () => {
    const a = new ServiceIPAllocator("10.0.0.0/27");
    const got: string[] = [];
    for (let ip = a.allocateNext(); ip; ip = a.allocateNext()) got.push(ip);
    expect(got.length).toBe(30);
    expect(new Set(got).size).toBe(30);
  });
});

describe("NodePort allocation", () => {
  it("gives kube's errors for a taken or out-of-range port", () => {
    const p = new NodePortAllocator({ base: 30000, size: 2768 });
    expect(p.allocate(30080).ok).toBe(true);
    expect(p.allocate(30080)).toEqual({ ok: false, error: "provided port is already allocated" });
    expect(p.allocate(29999)).toEqual({
      ok: false,
      error: "provided port is not in the valid range. The range of valid ports is 30000-32767",
    });
  });
});

describe("Service admission", () => {
  it("gives a ClusterIP Service one IP and the IPv4 single-stack fields", () => {
    const a = newAllocator();
    const s = svc("web", { ports: [{ port: 80 }], selector: { app: "web" } });
    expect(a.admitCreate(s, live)).toBeUndefined();
    expect(s.spec!.clusterIP).toMatch(/^10\.(9[6-9]|10\d|11[01])\./);
    expect(s.spec!.clusterIPs).toEqual([s.spec!.clusterIP]);
    expect(s.spec!.ipFamilies).toEqual(["IPv4"]);
    expect(s.spec!.ipFamilyPolicy).toBe("SingleStack");
    expect(a.ips.used).toBe(1);
  });

  it("refuses a taken ClusterIP with kube-apiserver's message", () => {
    const a = newAllocator();
    expect(
      a.admitCreate(svc("kube-dns", { clusterIP: "10.96.0.10", ports: [{ port: 53 }] }), live),
    ).toBeUndefined();
    const errs = a.admitCreate(svc("other", { clusterIP: "10.96.0.10", ports: [{ port: 53 }] }), live);
    expect(errs).toEqual([
      {
        type: "FieldValueInvalid",
        field: "spec.clusterIPs",
        badValue: ["10.96.0.10"],
        detail: "failed to allocate IP 10.96.0.10: provided IP is already allocated",
      },
    ]);
    const out = a.admitCreate(svc("far", { clusterIP: "192.168.0.1", ports: [{ port: 53 }] }), live);
    expect(out?.[0]?.detail).toBe(
      "failed to allocate IP 192.168.0.1: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
    );
  });

  it("gives headless and ExternalName Services no IP", () => {
    const a = newAllocator();
    const headless = svc("db", { clusterIP: "None", selector: { app: "db" }, ports: [{ port: 5432 }] });
    const ext = svc("external-db", { type: "ExternalName", externalName: "db.example.com" });
    expect(a.admitCreate(headless, live)).toBeUndefined();
    expect(a.admitCreate(ext, live)).toBeUndefined();
    expect(headless.spec!.clusterIPs).toEqual(["None"]);
    expect(ext.spec!.clusterIP).toBeUndefined();
    expect(a.ips.used).toBe(0);
  });

  it("allocates node ports for NodePort Services and refuses a taken one", () => {
    const a = newAllocator();
    const s = svc("web", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }, { port: 443 }] });
    expect(a.admitCreate(s, live)).toBeUndefined();
    expect(s.spec!.ports![1]!.nodePort).toBeGreaterThanOrEqual(30000);
    const t = svc("web2", { type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] });
    expect(a.admitCreate(t, live)).toEqual([
      {
        type: "FieldValueInvalid",
        field: "spec.ports[0].nodePort",
        badValue: 30080,
        detail: "provided port is already allocated",
      },
    ]);
    // the failed create kept nothing
    expect(a.ips.used).toBe(1);
    expect(a.ports.used).toBe(2);
  });

  it("shares one node port between TCP and UDP on the same port number", () => {
    const a = newAllocator();
    const s = svc("dns", {
      type: "NodePort",
      ports: [
        { port: 53, protocol: "UDP" },
        { port: 53, protocol: "TCP" },
      ],
    });
    a.admitCreate(s, live);
    expect(s.spec!.ports![0]!.nodePort).toBe(s.spec!.ports![1]!.nodePort);
    expect(a.ports.used).toBe(1);
  });

  it("gives a Local LoadBalancer a healthCheckNodePort", () => {
    const a = newAllocator();
    const s = svc("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    a.admitCreate(s, live);
    expect(s.spec!.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(a.ports.used).toBe(2);
  });

  it("allocates nothing on a dry run", () => {
    const a = newAllocator();
    const s = svc("web", { type: "NodePort", ports: [{ port: 80 }] });
    expect(a.admitCreate(s, { dryRun: true })).toBeUndefined();
    expect(s.spec!.clusterIP).toBeTruthy();
    expect(a.ips.used + a.ports.used).toBe(0);
  });

  it("releases and allocates as an update changes the type", () => {
    const a = newAllocator();
    const v1 = svc("web", { type: "NodePort", ports: [{ port: 80 }] });
    a.admitCreate(v1, live);
    const ip = v1.spec!.clusterIP!;
    // NodePort -> ClusterIP drops the node port
    const v2 = structuredClone(v1);
    v2.spec!.type = "ClusterIP";
    expect(a.admitUpdate(v2, v1, live)).toBeUndefined();
    expect(v2.spec!.ports![0]!.nodePort).toBeUndefined();
    expect(a.ports.used).toBe(0);
    // ClusterIP -> ExternalName releases the IP
    const v3 = structuredClone(v2);
    v3.spec!.type = "ExternalName";
    v3.spec!.externalName = "example.com";
    expect(a.admitUpdate(v3, v2, live)).toBeUndefined();
    expect(v3.spec!.clusterIP).toBeUndefined();
    expect(a.ips.has(ip)).toBe(false);
    // ExternalName -> LoadBalancer allocates both again
    const v4 = structuredClone(v3);
    v4.spec!.type = "LoadBalancer";
    delete v4.spec!.externalName;
    expect(a.admitUpdate(v4, v3, live)).toBeUndefined();
    expect(v4.spec!.clusterIP).toBeTruthy();
    expect(v4.spec!.ports![0]!.nodePort).toBeTruthy();
    expect(a.ips.used).toBe(1);
    expect(a.ports.used).toBe(1);
  });

  it("keeps allocated values when an update omits them, and refuses a changed ClusterIP", () => {
    const a = newAllocator();
    const v1 = svc("web", { type: "NodePort", ports: [{ port: 80 }] });
    a.admitCreate(v1, live);
    const replaced = svc("web", { type: "NodePort", ports: [{ port: 80 }] });
    expect(a.admitUpdate(replaced, v1, live)).toBeUndefined();
    expect(replaced.spec!.clusterIP).toBe(v1.spec!.clusterIP);
    expect(replaced.spec!.ports![0]!.nodePort).toBe(v1.spec!.ports![0]!.nodePort);
    const moved = structuredClone(v1);
    moved.spec!.clusterIP = "10.96.0.99";
    moved.spec!.clusterIPs = ["10.96.0.99"];
    expect(a.admitUpdate(moved, v1, live)?.[0]?.detail).toBe("may not change once set");
  });

  it("releases everything on delete", () => {
    const a = newAllocator();
    const s = svc("web", { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ port: 80 }] });
    a.admitCreate(s, live);
    a.release(s);
    expect(a.ips.used + a.ports.used).toBe(0);
  });

  it("repair claims what stored Services hold and frees leaks after three passes", () => {
    const a = newAllocator();
    const stored = svc("web", {
      clusterIP: "10.96.5.5",
      clusterIPs: ["10.96.5.5"],
      type: "NodePort",
      ports: [{ port: 80, nodePort: 31000 }],
    });
    a.ips.allocate("10.100.0.1"); // leaked by a create that failed after admission
    expect(a.repair([stored]).claimed).toBe(2);
    expect(a.ips.has("10.96.5.5") && a.ports.has(31000)).toBe(true);
    a.repair([stored]);
    expect(a.ips.has("10.100.0.1")).toBe(true);
    expect(a.repair([stored]).released).toBe(1);
    expect(a.ips.has("10.100.0.1")).toBe(false);
    expect(a.ips.has("10.96.5.5")).toBe(true);
  });

  it("allocates 10,000 distinct ClusterIPs", () => {
    const a = newAllocator();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const s = svc(`s${i}`, { ports: [{ port: 80 }] });
      a.admitCreate(s, live);
      seen.add(s.spec!.clusterIP!);
    }
    expect(seen.size).toBe(10_000);
  });
});

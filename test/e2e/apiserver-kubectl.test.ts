// The real kubectl 1.32 against the real klab apiserver: the networking guide's manifests,
// get/describe/apply/patch/delete, watches, auth and errors as kube-apiserver gives them.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

const GUIDE = resolve(import.meta.dirname, "../fixtures/guide");
const guide = (name: string) =>
  join(
    GUIDE,
    readdirSync(GUIDE).find((f) => f.includes(name))!,
  );

describeWith({ tools: ["kubectl"] }, "kubectl against the apiserver", () => {
  let api: TestApiServer;
  beforeAll(async () => {
    api = await startApiServer();
  });
  afterAll(async () => {
    await api?.stop();
  });

  const ok = async (args: string[], input?: string) => {
    const r = await api.kubectl(args, { input });
    expect(r.stderr, `kubectl ${args.join(" ")}`).toBe("");
    expect(r.code).toBe(0);
    return r.stdout;
  };

  it("reports a v1.32 server and its discovery", async () => {
    expect(await ok(["version"])).toMatch(/Server Version: v1\.32\.\d+/);
    const res = await ok(["api-resources"]);
    expect(res).toMatch(/^services\s+svc\s+v1\s+true\s+Service$/m);
    expect(res).toMatch(/^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m);
    expect(res).toMatch(/^endpointslices\s+discovery\.k8s\.io\/v1\s+true\s+EndpointSlice$/m);
  });

  it("starts with the system namespaces and the kubernetes Service", async () => {
    const ns = await ok(["get", "namespaces", "-o", "name"]);
    for (const n of ["default", "kube-system", "kube-public", "kube-node-lease"])
      expect(ns).toContain(`namespace/${n}`);
    const svc = JSON.parse(await ok(["get", "svc", "kubernetes", "-o", "json"]));
    expect(svc.spec.clusterIP).toBe("10.96.0.1");
    const ep = JSON.parse(await ok(["get", "endpoints", "kubernetes", "-o", "json"]));
    expect(ep.subsets[0].addresses[0].ip).toBe("127.0.0.1");
    expect(ep.subsets[0].ports[0].port).toBe(Number(new URL(api.url).port));
    expect(await ok(["cluster-info"])).toContain(`Kubernetes control plane is running at ${api.url}`);
  });

  it("applies every manifest of the networking guide", async () => {
    await ok(["create", "namespace", "production"]);
    expect(await ok(["apply", "-f", guide("service-clusterip")])).toBe("service/web-service created\n");
    let svc = JSON.parse(await ok(["get", "svc", "web-service", "-o", "json"]));
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.spec.clusterIP).toMatch(/^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$/);
    const clusterIP = svc.spec.clusterIP;

    expect(await ok(["apply", "-f", guide("service-nodeport")])).toBe("service/web-service configured\n");
    svc = JSON.parse(await ok(["get", "svc", "web-service", "-o", "json"]));
    expect(svc.spec.type).toBe("NodePort");
    expect(svc.spec.ports[0].nodePort).toBe(30080);
    expect(svc.spec.clusterIP).toBe(clusterIP);

    expect(await ok(["apply", "-f", guide("service-loadbalancer")])).toBe("service/web-service configured\n");
    svc = JSON.parse(await ok(["get", "svc", "web-service", "-o", "json"]));
    expect(svc.spec.type).toBe("LoadBalancer");

    for (const f of [
      "externalname",
      "ingress",
      "api-allow-frontend",
      "deny-all",
      "db-allow-app",
      "coredns",
      "api-policy",
    ]) {
      expect(await ok(["apply", "-f", guide(f)])).toMatch(/ created\n$/);
    }
    expect(await ok(["get", "netpol", "-A", "-o", "name"])).toBe(
      [
        "networkpolicy.networking.k8s.io/api-allow-frontend",
        "networkpolicy.networking.k8s.io/api-policy",
        "networkpolicy.networking.k8s.io/db-allow-app",
        "networkpolicy.networking.k8s.io/deny-all",
        "",
      ].join("\n"),
    );
    const prod = await ok(["get", "netpol", "-n", "production", "-o", "jsonpath={.items[*].metadata.name}"]);
    expect(prod).toBe("deny-all");
    const cm = JSON.parse(await ok(["get", "cm", "coredns", "-n", "kube-system", "-o", "json"]));
    expect(cm.data.Corefile).toContain("kubernetes cluster.local in-addr.arpa ip6.arpa");
    const ing = JSON.parse(await ok(["get", "ingress", "web-ingress", "-o", "json"]));
    expect(ing.spec.rules[0].http.paths.map((p: { path: string }) => p.path)).toEqual(["/api", "/"]);
    expect(ing.metadata.generation).toBe(1);
  });

  it("re-applies an edited manifest as a strategic merge patch", async () => {
    const manifest = (image: string, env: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: patched, labels: {app: patched}}
spec:
  replicas: 2
  selector: {matchLabels: {app: patched}}
  template:
    metadata: {labels: {app: patched}}
    spec:
      containers:
      - {name: side, image: busybox, args: [sleep, "3600"]}
      - name: web
        image: ${image}
        ports: [{containerPort: 80, name: http}]
        env: [${env}]
`;
    await ok(["apply", "-f", "-"], manifest("nginx", "{name: A, value: '1'}, {name: B, value: '2'}"));
    const before = JSON.parse(await ok(["get", "deploy", "patched", "-o", "json"]));
    expect(await ok(["apply", "-f", "-"], manifest("nginx:1.27", "{name: B, value: '3'}"))).toBe(
      "deployment.apps/patched configured\n",
    );
    const after = JSON.parse(await ok(["get", "deploy", "patched", "-o", "json"]));
    const web = after.spec.template.spec.containers.find((c: { name: string }) => c.name === "web");
    expect(after.spec.template.spec.containers.map((c: { name: string }) => c.name)).toEqual(["side", "web"]);
    expect(web.image).toBe("nginx:1.27");
    expect(web.env).toEqual([{ name: "B", value: "3" }]);
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(await ok(["apply", "-f", "-"], manifest("nginx:1.27", "{name: B, value: '3'}"))).toBe(
      "deployment.apps/patched unchanged\n",
    );
    await ok([
      "patch",
      "deploy",
      "patched",
      "--type=json",
      "-p",
      '[{"op":"replace","path":"/spec/replicas","value":4}]',
    ]);
    await ok(["patch", "deploy", "patched", "--type=merge", "-p", '{"metadata":{"labels":{"tier":"fe"}}}']);
    const patched = JSON.parse(await ok(["get", "deploy", "patched", "-o", "json"]));
    expect(patched.spec.replicas).toBe(4);
    expect(patched.metadata.labels).toEqual({ app: "patched", tier: "fe" });
    expect(await ok(["scale", "deploy", "patched", "--replicas=1"])).toBe("deployment.apps/patched scaled\n");
    expect(await ok(["get", "deploy", "patched", "-o", "jsonpath={.spec.replicas}"])).toBe("1");
  });

  it("answers errors as kube-apiserver does", async () => {
    let r = await api.kubectl(["get", "pod", "nope"]);
    expect(r.stderr).toBe('Error from server (NotFound): pods "nope" not found\n');
    expect(r.code).toBe(1);
    r = await api.kubectl(["create", "-f", guide("externalname")]);
    expect(r.stderr).toContain("Error from server (AlreadyExists): error when creating");
    expect(r.stderr).toContain('services "external-db" already exists');
    // kubectl looks the namespace up after a 404, and reports that instead, as with kube-apiserver.
    r = await api.kubectl(["get", "pods", "-n", "does-not-exist", "nope"]);
    expect(r.stderr).toBe('Error from server (NotFound): namespaces "does-not-exist" not found\n');
    r = await api.kubectl(["create", "configmap", "x", "-n", "no-such-ns"]);
    expect(r.stderr).toBe('error: failed to create configmap: namespaces "no-such-ns" not found\n');
    r = await api.kubectl(["apply", "-f", "-"], {
      input: "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
    });
    expect(r.stderr).toContain('no matches for kind "Widget" in version "v1"');
  });

  it("removes what delete -f names", async () => {
    await ok(["apply", "-f", guide("db-allow-app")]);
    expect(await ok(["delete", "-f", guide("db-allow-app")])).toBe(
      'networkpolicy.networking.k8s.io "db-allow-app" deleted\n',
    );
    const r = await api.kubectl(["get", "netpol", "db-allow-app"]);
    expect(r.stderr).toContain('networkpolicies.networking.k8s.io "db-allow-app" not found');
  });

  it("keeps an object as sent in -o yaml, with server fields added", async () => {
    const y = await ok(["get", "ing", "web-ingress", "-o", "yaml"]);
    expect(y).toContain("kubectl.kubernetes.io/last-applied-configuration");
    expect(y).toMatch(/uid: [0-9a-f-]{36}/);
    expect(y).toMatch(/creationTimestamp: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"/);
    expect(readFileSync(guide("ingress"), "utf8")).toContain("tls-secret");
    expect(y).toContain("secretName: tls-secret");
  });

  it("prints tables with the columns kubectl prints: -o wide, -A, -l", async () => {
    const wide = await ok(["get", "svc", "web-service", "-o", "wide"]);
    expect(wide).toMatch(/^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR$/m);
    expect(wide).toMatch(
      /^web-service\s+LoadBalancer\s+10\.\d+\.\d+\.\d+\s+<pending>\s+80:30080\/TCP\s+\S+\s+app=web$/m,
    );
    const all = await ok(["get", "svc", "-A"]);
    expect(all).toMatch(/^NAMESPACE\s+NAME\s+TYPE/m);
    expect(all).toMatch(/^default\s+kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443\/TCP/m);
    await ok(["create", "configmap", "labelled"]);
    await ok(["label", "configmap", "labelled", "team=net"]);
    expect(await ok(["get", "cm", "-l", "team=net"])).toMatch(/^NAME\s+DATA\s+AGE\nlabelled\s+0\s+\S+\n$/);
    expect(await ok(["get", "cm", "-l", "team!=net", "-o", "name"])).not.toContain("labelled");
    expect(await ok(["get", "netpol", "api-allow-frontend"])).toMatch(
      /^api-allow-frontend\s+app=api\s+\S+$/m,
    );
    const ing = await ok(["get", "ing", "web-ingress"]);
    expect(ing).toMatch(/^web-ingress\s+nginx\s+myapp\.com\s+80, 443\s+\S+$/m);
    const describe = await ok(["describe", "svc", "web-service"]);
    expect(describe).toMatch(/^Type:\s+LoadBalancer$/m);
    expect(describe).toMatch(/^NodePort:\s+<unset>\s+30080\/TCP$/m);
  });

  it("validates names, ports and allocations with kube-apiserver's messages", async () => {
    let r = await api.kubectl(["create", "configmap", "Bad_Name"]);
    expect(r.stderr).toContain(
      'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of',
    );
    r = await api.kubectl(["create", "service", "nodeport", "np1", "--tcp=80:80", "--node-port=29999"]);
    expect(r.stderr).toContain(
      'Service "np1" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767',
    );
    r = await api.kubectl(["create", "service", "nodeport", "np2", "--tcp=80:80", "--node-port=30080"]);
    expect(r.stderr).toContain(
      'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    );
    expect(await ok(["create", "configmap", "dry", "--dry-run=server", "-o", "name"])).toBe(
      "configmap/dry\n",
    );
    r = await api.kubectl(["get", "cm", "dry"]);
    expect(r.stderr).toContain('configmaps "dry" not found');
  });

  it("refuses new objects in a terminating namespace, then removes the namespace with its content", async () => {
    await ok(["create", "namespace", "doomed"]);
    await ok(["create", "configmap", "x", "-n", "doomed"]);
    // A finalizer of our own holds the namespace in Terminating while we try to create in it.
    await ok([
      "patch",
      "configmap",
      "x",
      "-n",
      "doomed",
      "--type=merge",
      "-p",
      '{"metadata":{"finalizers":["klab.test/hold"]}}',
    ]);
    await ok(["delete", "namespace", "doomed", "--wait=false"]);
    expect(await ok(["get", "ns", "doomed", "-o", "jsonpath={.status.phase}"])).toBe("Terminating");
    const r = await api.kubectl(["create", "configmap", "y", "-n", "doomed"]);
    expect(r.stderr).toBe(
      'error: failed to create configmap: configmaps "y" is forbidden: unable to create new content in namespace doomed because it is being terminated\n',
    );
    await ok([
      "patch",
      "configmap",
      "x",
      "-n",
      "doomed",
      "--type=merge",
      "-p",
      '{"metadata":{"finalizers":null}}',
    ]);
    const gone = await api.kubectl(["wait", "--for=delete", "namespace/doomed", "--timeout=90s"], {
      timeoutMs: 120_000,
    });
    expect(gone.code, gone.stderr).toBe(0);
  }, 150_000);

  it("rejects unknown fields under kubectl's default strict validation, warns under --validate=warn", async () => {
    const typo =
      "apiVersion: v1\nkind: Service\nmetadata: {name: typo}\nspec:\n  portz: [1]\n  ports: [{port: 80, nme: x}]\n";
    let r = await api.kubectl(["apply", "-f", "-"], { input: typo });
    expect(r.stderr).toBe(
      'Error from server (BadRequest): error when creating "STDIN": Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.ports[0].nme", unknown field "spec.portz"\n',
    );
    r = await api.kubectl(["apply", "--validate=warn", "-f", "-"], { input: typo });
    expect(r.stderr).toBe(
      'Warning: unknown field "spec.ports[0].nme"\nWarning: unknown field "spec.portz"\n',
    );
    expect(r.stdout).toBe("service/typo created\n");
    const svc = JSON.parse(await ok(["get", "svc", "typo", "-o", "json"]));
    expect(svc.spec.portz).toBeUndefined();
    expect(svc.spec.ports[0]).toEqual({ port: 80, protocol: "TCP", targetPort: 80 });
  });

  it("decodes the protobuf bodies of kubectl's typed commands (create ingress, run, expose)", async () => {
    expect(await ok(["create", "ingress", "ci", "--rule=foo.com/bar=svc1:8080,tls=my-cert"])).toBe(
      "ingress.networking.k8s.io/ci created\n",
    );
    const ing = JSON.parse(await ok(["get", "ingress", "ci", "-o", "json"]));
    expect(ing.spec.rules[0]).toEqual({
      host: "foo.com",
      http: {
        paths: [
          { backend: { service: { name: "svc1", port: { number: 8080 } } }, path: "/bar", pathType: "Exact" },
        ],
      },
    });
    expect(ing.spec.tls).toEqual([{ hosts: ["foo.com"], secretName: "my-cert" }]);
    await ok([
      "run",
      "pv",
      "--image=nginx",
      "--labels=app=pv",
      '--overrides={"spec":{"volumes":[{"name":"v","emptyDir":{}}]}}',
    ]);
    const pod = JSON.parse(await ok(["get", "pod", "pv", "-o", "json"]));
    // the ServiceAccount admission plugin adds kube-api-access-xxxxx after the pod's own volumes
    expect(pod.spec.volumes[0]).toEqual({ name: "v", emptyDir: {} });
    expect(pod.spec.volumes[1].name).toMatch(/^kube-api-access-/);
    expect(pod.spec.containers[0]).toMatchObject({ name: "pv", image: "nginx" });
    expect(await ok(["expose", "pod", "pv", "--port=80", "--target-port=8080"])).toBe("service/pv exposed\n");
    const svc = JSON.parse(await ok(["get", "svc", "pv", "-o", "json"]));
    expect(svc.spec.selector).toEqual({ app: "pv" });
    expect(svc.spec.ports[0]).toMatchObject({ port: 80, targetPort: 8080, protocol: "TCP" });
  });

  it("deletes a pod on a node gracefully, and at once when forced or when it has no node", async () => {
    await ok(["apply", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata: {name: grace-node}\n");
    await ok(["run", "gp", "--image=nginx", '--overrides={"spec":{"nodeName":"grace-node"}}']);
    expect(await ok(["delete", "pod", "gp", "--wait=false"])).toBe('pod "gp" deleted\n');
    const pod = JSON.parse(await ok(["get", "pod", "gp", "-o", "json"]));
    expect(pod.metadata.deletionGracePeriodSeconds).toBe(30);
    expect(Date.parse(pod.metadata.deletionTimestamp)).toBeGreaterThan(Date.now() + 20_000);
    expect(await ok(["get", "pod", "gp"])).toMatch(/^gp\s+0\/1\s+Terminating\s/m);
    const r = await api.kubectl(["delete", "pod", "gp", "--grace-period=0", "--force"]);
    expect(r.stdout).toBe('pod "gp" force deleted\n');
    expect((await api.kubectl(["get", "pod", "gp"])).stderr).toContain('pods "gp" not found');
    await ok(["run", "nonode", "--image=nginx", '--overrides={"spec":{"nodeName":"no-such-node"}}']);
    expect(await ok(["delete", "pod", "nonode"])).toBe('pod "nonode" deleted\n');
  });
});

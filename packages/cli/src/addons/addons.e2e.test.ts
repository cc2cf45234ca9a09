import { afterAll, beforeAll, expect, it } from "vitest";
import { KubeClient } from "@klab/client";
import { describeWith } from "../../../../test/support/prereq.ts";
import { startApiServer, type TestApiServer } from "../../../../test/support/apiserver.ts";
import { defaultSettings, installAddons } from "./index.ts";

describeWith({ tools: ["kubectl"] }, "the lab's addons in the real API server", () => {
  let api: TestApiServer;
  let client: KubeClient;
  beforeAll(async () => {
    api = await startApiServer();
    client = KubeClient.fromKubeconfig(api.kubeconfig);
  });
  afterAll(async () => {
    await client?.close();
    await api?.stop();
  });

  it("are all accepted, with kube-dns at 10.96.0.10 and the default IngressClass nginx", async () => {
    const created = await installAddons(client, defaultSettings, { example: true });
    expect(created).toContain("daemonset/kube-proxy");
    expect(created).toContain("ingress/web-ingress");
    const dns = await api.kubectl([
      "get",
      "svc",
      "kube-dns",
      "-n",
      "kube-system",
      "-o",
      "jsonpath={.spec.clusterIP}",
    ]);
    expect(dns.stdout).toBe("10.96.0.10");
    const cls = await api.kubectl(["get", "ingressclass", "nginx", "-o", "yaml"]);
    expect(cls.stdout).toContain('ingressclass.kubernetes.io/is-default-class: "true"');
    const corefile = await api.kubectl([
      "get",
      "cm",
      "coredns",
      "-n",
      "kube-system",
      "-o",
      "jsonpath={.data.Corefile}",
    ]);
    expect(corefile.stdout).toContain("kubernetes cluster.local in-addr.arpa ip6.arpa");
    const lb = await api.kubectl(["get", "svc", "-n", "ingress-nginx", "ingress-nginx-controller"]);
    expect(lb.stdout).toMatch(
      /LoadBalancer\s+10\.\d+\.\d+\.\d+\s+<pending>\s+80:3\d{4}\/TCP,443:3\d{4}\/TCP/,
    );
  });

  it("change nothing when installed again (a second klab up)", async () => {
    await api.kubectl([
      "patch",
      "cm",
      "coredns",
      "-n",
      "kube-system",
      "-p",
      '{"data":{"Corefile":".:53 {\\n  errors\\n}\\n"}}',
    ]);
    expect(await installAddons(client, defaultSettings, { example: true })).toEqual([]);
    const corefile = await api.kubectl([
      "get",
      "cm",
      "coredns",
      "-n",
      "kube-system",
      "-o",
      "jsonpath={.data.Corefile}",
    ]);
    expect(corefile.stdout).toBe(".:53 {\n  errors\n}\n");
  });
});

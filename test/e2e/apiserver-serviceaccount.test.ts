// Service-account tokens through the real kubectl: `kubectl create token` (TokenRequest), the
// token used as a bearer, and refused once its ServiceAccount is gone; every namespace gets its
// "default" ServiceAccount and ConfigMap kube-root-ca.crt; pods get the kube-api-access volume.
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

describeWith({ tools: ["kubectl"] }, "service-account tokens", () => {
  let api: TestApiServer;
  beforeAll(async () => {
    api = await startApiServer();
  });
  afterAll(async () => {
    await api?.stop();
  });
  const ok = async (args: string[]) => {
    const r = await api.kubectl(args);
    expect(r.stderr, `kubectl ${args.join(" ")}`).toBe("");
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const eventually = async (f: () => Promise<boolean>) => {
    for (let i = 0; i < 200; i++) {
      if (await f()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("condition never held");
  };

  it("kubectl create token gives a token the API accepts until its ServiceAccount is deleted", async () => {
    await ok(["create", "namespace", "sa-e2e"]);
    await eventually(async () => (await api.kubectl(["-n", "sa-e2e", "get", "sa", "default"])).code === 0);
    await eventually(
      async () => (await api.kubectl(["-n", "sa-e2e", "get", "cm", "kube-root-ca.crt"])).code === 0,
    );
    const ca = JSON.parse(await ok(["-n", "sa-e2e", "get", "cm", "kube-root-ca.crt", "-o", "json"]));
    expect(ca.data["ca.crt"]).toBe(api.caPem);

    await ok(["-n", "sa-e2e", "create", "serviceaccount", "robot"]);
    const token = (await ok(["-n", "sa-e2e", "create", "token", "robot", "--duration=1h"])).trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(claims.sub).toBe("system:serviceaccount:sa-e2e:robot");
    const asRobot = [
      "--kubeconfig=/dev/null",
      `--server=${api.url}`,
      "--insecure-skip-tls-verify",
      `--token=${token}`,
    ];
    expect(await ok([...asRobot, "-n", "sa-e2e", "get", "sa", "robot", "-o", "name"])).toBe(
      "serviceaccount/robot\n",
    );

    const short = await api.kubectl(["-n", "sa-e2e", "create", "token", "robot", "--duration=1m"]);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain("may not specify a duration less than 10 minutes");
    const missing = await api.kubectl(["-n", "sa-e2e", "create", "token", "ghost"]);
    expect(missing.stderr).toContain('serviceaccounts "ghost" not found');

    await ok(["-n", "sa-e2e", "delete", "sa", "robot"]);
    const refused = await api.kubectl([...asRobot, "-n", "sa-e2e", "get", "sa"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Unauthorized|must be logged in/);
  });

  it("pods get the kube-api-access projected volume at /var/run/secrets/kubernetes.io/serviceaccount", async () => {
    await ok(["-n", "sa-e2e", "run", "p", "--image=busybox", "--restart=Never", "--", "sleep", "3600"]);
    const pod = JSON.parse(await ok(["-n", "sa-e2e", "get", "pod", "p", "-o", "json"]));
    expect(pod.spec.serviceAccountName).toBe("default");
    const vol = pod.spec.volumes.find((v: { name: string }) => v.name.startsWith("kube-api-access-"));
    expect(vol.projected.sources.map((s: object) => Object.keys(s)[0])).toEqual([
      "serviceAccountToken",
      "configMap",
      "downwardAPI",
    ]);
    expect(pod.spec.containers[0].volumeMounts).toEqual([
      { name: vol.name, readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" },
    ]);
  });
});

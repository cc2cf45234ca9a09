import { describe, expect, it } from "vitest";
import { parseImageRef, resolveImage } from "./catalog.ts";

describe("image catalog", () => {
  it("normalises names as containerd reports them", () => {
    expect(parseImageRef("nginx")?.normalized).toBe("docker.io/library/nginx:latest");
    expect(parseImageRef("hashicorp/http-echo:1.0")?.normalized).toBe("docker.io/hashicorp/http-echo:1.0");
    expect(parseImageRef("registry.k8s.io/e2e-test-images/agnhost:2.47")?.repository).toBe(
      "registry.k8s.io/e2e-test-images/agnhost",
    );
    expect(parseImageRef("Not A Ref")).toBeUndefined();
  });
  it("runs ENTRYPOINT+CMD, with command replacing ENTRYPOINT and args replacing CMD", () => {
    const r = resolveImage({
      name: "a",
      image: "registry.k8s.io/e2e-test-images/agnhost:2.47",
      args: ["netexec", "--http-port=8080"],
    });
    expect(r.ok && r.argv).toEqual(["/agnhost", "netexec", "--http-port=8080"]);
    const p = resolveImage({ name: "a", image: "registry.k8s.io/e2e-test-images/agnhost:2.47" });
    expect(p.ok && p.argv).toEqual(["/agnhost", "pause"]);
    const c = resolveImage({ name: "b", image: "busybox", command: ["sh", "-c", "echo hi"] });
    expect(c.ok && c.argv).toEqual(["sh", "-c", "echo hi"]);
    const n = resolveImage({ name: "n", image: "nginx:1.27" });
    expect(n.ok && n.argv).toEqual(["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]);
  });
  it("an image outside the catalog is ErrImagePull naming the catalog", () => {
    const r = resolveImage({ name: "x", image: "example.com/does/not-exist:1" });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe("ErrImagePull");
      expect(r.message).toMatch(/^Failed to pull image "example.com\/does\/not-exist:1"/);
      expect(r.message).toContain("registry.k8s.io/e2e-test-images/agnhost");
    }
    const bad = resolveImage({ name: "x", image: "UPPER CASE" });
    expect(!bad.ok && bad.reason).toBe("InvalidImageName");
  });
  it("runs the system images' binaries where their manifests name them", () => {
    const kp = resolveImage({
      name: "kube-proxy",
      image: "registry.k8s.io/kube-proxy:v1.32.0",
      command: ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf"],
    });
    expect(kp.ok && kp.spec.launchers).toEqual({ "usr/local/bin/kube-proxy": "klab:proxy" });
    const ing = resolveImage({
      name: "controller",
      image: "registry.k8s.io/ingress-nginx/controller:v1.11.3",
      args: ["/nginx-ingress-controller", "--ingress-class=nginx"],
    });
    expect(ing.ok && ing.argv).toEqual(["/nginx-ingress-controller", "--ingress-class=nginx"]);
    const dns = resolveImage({ name: "coredns", image: "registry.k8s.io/coredns/coredns:v1.11.3" });
    expect(dns.ok && dns.spec.launchers).toEqual({ coredns: "klab:coredns" });
  });
});

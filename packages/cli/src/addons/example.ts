/**
 * The reference guide's example application, deployed by `klab up` unless `--bare`: Deployments
 * `web` (agnhost netexec: /hostname, /clientip, /echo…) and `api` (http-echo answering every path
 * with its pod's name, since the guide's Ingress passes /api unchanged), Services `web-service` and
 * `api-service` (port 80 → 8080), and Ingress `web-ingress` for myapp.com with TLS from
 * `tls-secret`, so that `curl -k --resolve myapp.com:8443:127.0.0.1 https://myapp.com:8443/api`
 * names the api pod that answered.
 */
import type { KubeObject } from "@klab/api";
import { selfSigned, tlsSecretData } from "@klab/ingress";

const obj = (o: Record<string, unknown>) => o as unknown as KubeObject;

type Container = Record<string, unknown>;

const netexec: Container = {
  image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
  args: ["netexec", "--http-port=8080", "--udp-port=8081"],
  readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 2 },
};

const podNameEcho: Container = {
  image: "hashicorp/http-echo:1.0",
  args: ["-listen=:8080", "-text=$(POD_NAME)"],
  env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
  readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 2 },
};

function app(name: string, replicas: number, container: Container): KubeObject[] {
  const labels = { app: name };
  return [
    obj({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "default", labels },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name, ...container, ports: [{ name: "http", containerPort: 8080 }] }],
          },
        },
      },
    }),
    obj({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `${name}-service`, namespace: "default", labels },
      spec: { type: "ClusterIP", selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    }),
  ];
}

export async function exampleObjects(): Promise<KubeObject[]> {
  const cert = await selfSigned({ commonName: "myapp.com", dnsNames: ["myapp.com"], keyType: "ecdsa" });
  return [
    ...app("web", 2, netexec),
    ...app("api", 2, podNameEcho),
    obj({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "tls-secret", namespace: "default" },
      type: "kubernetes.io/tls",
      data: tlsSecretData(cert),
    }),
    obj({
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "web-ingress", namespace: "default" },
      spec: {
        ingressClassName: "nginx",
        rules: [
          {
            host: "myapp.com",
            http: {
              paths: [
                {
                  path: "/api",
                  pathType: "Prefix",
                  backend: { service: { name: "api-service", port: { number: 80 } } },
                },
                {
                  path: "/",
                  pathType: "Prefix",
                  backend: { service: { name: "web-service", port: { number: 80 } } },
                },
              ],
            },
          },
        ],
        tls: [{ hosts: ["myapp.com"], secretName: "tls-secret" }],
      },
    }),
  ];
}

/**
 * The lab's system components, as objects in the API like kubeadm and the ingress-nginx chart
 * create them: kube-proxy (DaemonSet + ConfigMap), CoreDNS (Deployment, Service kube-dns,
 * ConfigMap with the reference guide's Corefile), and ingress-nginx (Deployment behind a
 * LoadBalancer Service, IngressClass `nginx` marked default), and the pod network's settings
 * (ConfigMap klab-cni, read by every node agent). The node agent runs their images from its
 * catalog as klab's own kube-proxy, CoreDNS and ingress controller.
 */
import type { KubeObject } from "@klab/api";

export interface ClusterSettings {
  /** How components that cannot use a Service reach the API server (kube-proxy). */
  apiServerURL: string;
  clusterCIDR: string;
  clusterDNS: string;
  clusterDomain: string;
  proxyMode: "iptables" | "ipvs" | "userspace";
  ipvsScheduler?: string;
  /** The pods' eth0 MTU: room for VXLAN's 50 bytes inside the node network's 1500. */
  podMTU?: number;
}

export const guideCorefile = `.:53 {
    errors
    health
    ready
    fault /etc/klab-faults
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
`;

const obj = (o: Record<string, unknown>) => o as unknown as KubeObject;

/** Everything `klab up` installs in kube-system and ingress-nginx, in the order it installs them. */
export function systemObjects(s: ClusterSettings): KubeObject[] {
  return [...podNetworkObjects(s), ...kubeProxyObjects(s), ...corednsObjects(s), ...ingressNginxObjects()];
}

/** The pod network's settings, as a CNI keeps them in kube-system (Calico's veth_mtu, Cilium's mtu). */
export function podNetworkObjects(s: ClusterSettings): KubeObject[] {
  return [
    obj({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "klab-cni", namespace: "kube-system" },
      data: { mtu: String(s.podMTU ?? 1450) },
    }),
  ];
}

export function kubeProxyObjects(s: ClusterSettings): KubeObject[] {
  const config = [
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
    "kind: KubeProxyConfiguration",
    "bindAddress: 0.0.0.0",
    "clientConnection:",
    "  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf",
    `clusterCIDR: ${s.clusterCIDR}`,
    "healthzBindAddress: 0.0.0.0:10256",
    "metricsBindAddress: 0.0.0.0:10249",
    "iptables:",
    "  masqueradeAll: false",
    "  minSyncPeriod: 1s",
    "  syncPeriod: 30s",
    "ipvs:",
    `  scheduler: "${s.ipvsScheduler ?? ""}"`,
    "  minSyncPeriod: 1s",
    "  syncPeriod: 30s",
    `mode: "${s.proxyMode}"`,
    "",
  ].join("\n");
  const kubeconfig = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster:",
    "    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    `    server: ${s.apiServerURL}`,
    "  name: default",
    "contexts:",
    "- context:",
    "    cluster: default",
    "    namespace: default",
    "    user: default",
    "  name: default",
    "current-context: default",
    "users:",
    "- name: default",
    "  user:",
    "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
    "",
  ].join("\n");
  const labels = { "k8s-app": "kube-proxy" };
  return [
    obj({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "kube-proxy", namespace: "kube-system" },
    }),
    obj({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kube-proxy", namespace: "kube-system", labels: { app: "kube-proxy" } },
      data: { "config.conf": config, "kubeconfig.conf": kubeconfig },
    }),
    obj({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "kube-proxy", namespace: "kube-system", labels },
      spec: {
        selector: { matchLabels: labels },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            priorityClassName: "system-node-critical",
            hostNetwork: true,
            serviceAccountName: "kube-proxy",
            nodeSelector: { "kubernetes.io/os": "linux" },
            tolerations: [{ operator: "Exists" }],
            containers: [
              {
                name: "kube-proxy",
                image: "registry.k8s.io/kube-proxy:v1.32.0",
                command: [
                  "/usr/local/bin/kube-proxy",
                  "--config=/var/lib/kube-proxy/config.conf",
                  "--hostname-override=$(NODE_NAME)",
                ],
                env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
                securityContext: { privileged: true },
                volumeMounts: [{ name: "kube-proxy", mountPath: "/var/lib/kube-proxy" }],
              },
            ],
            volumes: [{ name: "kube-proxy", configMap: { name: "kube-proxy" } }],
          },
        },
      },
    }),
  ];
}

export function corednsObjects(s: ClusterSettings): KubeObject[] {
  const labels = { "k8s-app": "kube-dns" };
  return [
    obj({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "coredns", namespace: "kube-system" },
    }),
    obj({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "coredns", namespace: "kube-system" },
      data: { Corefile: guideCorefile.replaceAll("cluster.local", s.clusterDomain) },
    }),
    obj({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "coredns", namespace: "kube-system", labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            priorityClassName: "system-cluster-critical",
            serviceAccountName: "coredns",
            dnsPolicy: "Default",
            nodeSelector: { "kubernetes.io/os": "linux" },
            tolerations: [
              { key: "CriticalAddonsOnly", operator: "Exists" },
              { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" },
            ],
            containers: [
              {
                name: "coredns",
                image: "registry.k8s.io/coredns/coredns:v1.11.3",
                args: ["-conf", "/etc/coredns/Corefile"],
                ports: [
                  { name: "dns", containerPort: 53, protocol: "UDP" },
                  { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
                  { name: "metrics", containerPort: 9153, protocol: "TCP" },
                ],
                livenessProbe: {
                  httpGet: { path: "/health", port: 8080, scheme: "HTTP" },
                  initialDelaySeconds: 60,
                  timeoutSeconds: 5,
                  successThreshold: 1,
                  failureThreshold: 5,
                },
                readinessProbe: { httpGet: { path: "/ready", port: 8181, scheme: "HTTP" } },
                volumeMounts: [
                  { name: "config-volume", mountPath: "/etc/coredns", readOnly: true },
                  // klab's DNS faults (klab fault inject dns-…), read by the Corefile's `fault` plugin
                  { name: "klab-faults", mountPath: "/etc/klab-faults", readOnly: true },
                ],
              },
            ],
            volumes: [
              {
                name: "config-volume",
                configMap: { name: "coredns", items: [{ key: "Corefile", path: "Corefile" }] },
              },
              { name: "klab-faults", configMap: { name: "klab-faults", optional: true } },
            ],
          },
        },
      },
    }),
    obj({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "kube-dns",
        namespace: "kube-system",
        labels: { ...labels, "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS" },
        annotations: { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
      },
      spec: {
        selector: labels,
        clusterIP: s.clusterDNS,
        ports: [
          { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
          { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
          { name: "metrics", port: 9153, protocol: "TCP", targetPort: 9153 },
        ],
      },
    }),
  ];
}

export function ingressNginxObjects(): KubeObject[] {
  const labels = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
  };
  return [
    obj({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "ingress-nginx", labels: { "app.kubernetes.io/name": "ingress-nginx" } },
    }),
    obj({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "ingress-nginx", namespace: "ingress-nginx", labels },
    }),
    obj({
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: {
        name: "nginx",
        labels,
        annotations: { "ingressclass.kubernetes.io/is-default-class": "true" },
      },
      spec: { controller: "k8s.io/ingress-nginx" },
    }),
    obj({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx", labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: "ingress-nginx",
            dnsPolicy: "ClusterFirst",
            nodeSelector: { "kubernetes.io/os": "linux" },
            terminationGracePeriodSeconds: 300,
            containers: [
              {
                name: "controller",
                image: "registry.k8s.io/ingress-nginx/controller:v1.11.3",
                args: [
                  "/nginx-ingress-controller",
                  "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
                  "--election-id=ingress-nginx-leader",
                  "--controller-class=k8s.io/ingress-nginx",
                  "--ingress-class=nginx",
                ],
                env: [
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                ],
                ports: [
                  { name: "http", containerPort: 80, protocol: "TCP" },
                  { name: "https", containerPort: 443, protocol: "TCP" },
                ],
                readinessProbe: {
                  httpGet: { path: "/healthz", port: 10254, scheme: "HTTP" },
                  initialDelaySeconds: 2,
                  periodSeconds: 2,
                  failureThreshold: 3,
                },
                livenessProbe: {
                  httpGet: { path: "/healthz", port: 10254, scheme: "HTTP" },
                  initialDelaySeconds: 10,
                  periodSeconds: 10,
                  failureThreshold: 5,
                },
              },
            ],
          },
        },
      },
    }),
    obj({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "ingress-nginx-controller", namespace: "ingress-nginx", labels },
      spec: {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        selector: labels,
        ports: [
          { name: "http", port: 80, protocol: "TCP", targetPort: "http", appProtocol: "http" },
          { name: "https", port: 443, protocol: "TCP", targetPort: "https", appProtocol: "https" },
        ],
      },
    }),
  ];
}

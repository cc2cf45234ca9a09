import { describe, expect, it } from "vitest";
import {
  endpointChain,
  serviceClusterChain,
  serviceExternalChain,
  serviceLocalChain,
} from "./chain-names.ts";
import {
  buildIptablesRules,
  buildIptablesRuleset,
  computeProbability,
  iptablesJumpRules,
} from "./iptables-rules.ts";
import { ep, service, slice, tcp } from "./test-fixtures.ts";

const node = { name: "node-1", ips: ["172.29.0.3"] };
const cfg = { clusterCIDR: "10.244.0.0/16" };

const web = service("default", "web", {
  clusterIP: "10.96.100.10",
  ports: [tcp("http", 80, { targetPort: 8080 })],
});
const webEps = slice(
  "default",
  "web",
  [{ name: "http", port: 8080 }],
  [ep("10.244.1.5", "node-1"), ep("10.244.2.7", "node-2"), ep("10.244.1.6", "node-1")],
);

const GOLDEN_WEB = `*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-2RIJ5GIYXEFH6G4D - [0:0]
:KUBE-SEP-AFGSLHOD2HFNCBX4 - [0:0]
:KUBE-SEP-F7BHZ7WL3PFYMSRY - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-2RIJ5GIYXEFH6G4D -m comment --comment default/web:http -s 10.244.2.7 -j KUBE-MARK-MASQ
-A KUBE-SEP-2RIJ5GIYXEFH6G4D -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.7:8080
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-F7BHZ7WL3PFYMSRY -m comment --comment default/web:http -s 10.244.1.6 -j KUBE-MARK-MASQ
-A KUBE-SEP-F7BHZ7WL3PFYMSRY -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.6:8080
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-AFGSLHOD2HFNCBX4
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.6:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-F7BHZ7WL3PFYMSRY
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.7:8080" -j KUBE-SEP-2RIJ5GIYXEFH6G4D
COMMIT
`;

function lines(text: string): string[] {
  return text.split("\n");
}

describe("kube-proxy chain names", () => {
  it("are kube-proxy's hashes for well-known service ports", () => {
    expect(serviceClusterChain("default/kubernetes:https", "tcp")).toBe("KUBE-SVC-NPX46M4PTMTKRN6Y");
    expect(serviceClusterChain("kube-system/kube-dns:dns", "udp")).toBe("KUBE-SVC-TCOU7JCQXEZGVUNU");
    expect(serviceClusterChain("ns1/svc1:p80", "TCP")).toBe("KUBE-SVC-XPGD46QRK7WJZT7O");
    expect(endpointChain("ns1/svc1:p80", "tcp", "10.180.0.1:80")).toBe("KUBE-SEP-SXIVWICOYRO3J4NJ");
  });
});

describe("buildIptablesRules", () => {
  it("writes a ClusterIP Service with three endpoints exactly as kube-proxy does", () => {
    expect(buildIptablesRules([web], [webEps], node, cfg)).toBe(GOLDEN_WEB);
  });

  it("splits three endpoints with probabilities 1/3, 1/2 and an unconditional last rule", () => {
    expect([3, 2, 1].map(computeProbability)).toEqual(["0.3333333333", "0.5000000000", "1.0000000000"]);
    const svcRules = lines(buildIptablesRules([web], [webEps], node, cfg)).filter((l) =>
      l.startsWith('-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http ->'),
    );
    expect(svcRules.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? "none")).toEqual([
      "0.3333333333",
      "0.5000000000",
      "none",
    ]);
  });

  it("routes the kubernetes Service to the API server through KUBE-SVC-NPX46M4PTMTKRN6Y", () => {
    const kubernetes = service("default", "kubernetes", {
      clusterIP: "10.96.0.1",
      ports: [tcp("https", 443, { targetPort: 6443 })],
    });
    const eps = slice("default", "kubernetes", [{ name: "https", port: 6443 }], [ep("172.29.0.2")]);
    const text = buildIptablesRules([kubernetes], [eps], node, cfg);
    const sep = endpointChain("default/kubernetes:https", "tcp", "172.29.0.2:6443");
    expect(lines(text)).toContain(
      '-A KUBE-SERVICES -m comment --comment "default/kubernetes:https cluster IP" -m tcp -p tcp -d 10.96.0.1 --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y',
    );
    expect(lines(text)).toContain(
      `-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 172.29.0.2:6443" -j ${sep}`,
    );
    expect(lines(text)).toContain(
      `-A ${sep} -m comment --comment default/kubernetes:https -m tcp -p tcp -j DNAT --to-destination 172.29.0.2:6443`,
    );
  });

  it("rejects at once for a Service without endpoints, on its cluster IP, external IPs and NodePort", () => {
    const lonely = service("shop", "cart", {
      type: "NodePort",
      clusterIP: "10.96.7.7",
      externalIPs: ["203.0.113.77"],
      ports: [tcp("", 8080, { nodePort: 30080 })],
    });
    const text = buildIptablesRules([lonely], [], node, cfg);
    expect(lines(text)).toEqual(
      expect.arrayContaining([
        '-A KUBE-SERVICES -m comment --comment "shop/cart has no endpoints" -m tcp -p tcp -d 10.96.7.7 --dport 8080 -j REJECT',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "shop/cart has no endpoints" -m tcp -p tcp -d 203.0.113.77 --dport 8080 -j REJECT',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "shop/cart has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT',
      ]),
    );
    expect(text).not.toMatch(/KUBE-SVC-|KUBE-SEP-|KUBE-EXT-/);
  });

  it("sends NodePort traffic through KUBE-EXT with masquerade under externalTrafficPolicy Cluster", () => {
    const np = service("default", "web", {
      type: "NodePort",
      clusterIP: "10.96.100.10",
      ports: [tcp("http", 80, { nodePort: 30080 })],
    });
    const text = buildIptablesRules([np], [webEps], node, cfg);
    const ext = serviceExternalChain("default/web:http", "tcp");
    const svc = serviceClusterChain("default/web:http", "tcp");
    expect(lines(text)).toEqual(
      expect.arrayContaining([
        `-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp -d 127.0.0.0/8 --dport 30080 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j ${ext}`,
        `-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j ${ext}`,
        `-A ${ext} -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ`,
        `-A ${ext} -j ${svc}`,
      ]),
    );
  });

  it("serves LoadBalancer ingress IPs and guards source ranges with KUBE-FW", () => {
    const lb = service(
      "default",
      "web",
      {
        type: "LoadBalancer",
        clusterIP: "10.96.100.10",
        ports: [tcp("http", 80, { nodePort: 30080 })],
        loadBalancerSourceRanges: ["203.0.113.0/24"],
      },
      { loadBalancer: { ingress: [{ ip: "172.29.255.200" }] } },
    );
    const text = buildIptablesRules([lb], [webEps], node, cfg);
    expect(text).toContain(
      '-A KUBE-SERVICES -m comment --comment "default/web:http loadbalancer IP" -m tcp -p tcp -d 172.29.255.200 --dport 80 -j KUBE-FW-CDGGSHYLG3RE2FKL',
    );
    expect(text).toContain(
      '-A KUBE-FW-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http loadbalancer IP" -s 203.0.113.0/24 -j KUBE-EXT-CDGGSHYLG3RE2FKL',
    );
    expect(text).toContain(
      '-A KUBE-PROXY-FIREWALL -m comment --comment "default/web:http traffic not accepted by KUBE-FW-CDGGSHYLG3RE2FKL" -m tcp -p tcp -d 172.29.255.200 --dport 80 -j DROP',
    );
    // Without source ranges the LB IP goes straight to KUBE-EXT.
    const open = { ...lb, spec: { ...lb.spec, loadBalancerSourceRanges: undefined } };
    expect(buildIptablesRules([open], [webEps], node, cfg)).toContain(
      "-d 172.29.255.200 --dport 80 -j KUBE-EXT-CDGGSHYLG3RE2FKL",
    );
  });

  it("keeps external traffic on local endpoints under externalTrafficPolicy Local", () => {
    const local = service(
      "default",
      "web",
      {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        healthCheckNodePort: 32000,
        clusterIP: "10.96.100.10",
        ports: [tcp("http", 80, { nodePort: 30080 })],
      },
      { loadBalancer: { ingress: [{ ip: "172.29.255.200" }] } },
    );
    const spn = "default/web:http";
    const ext = serviceExternalChain(spn, "tcp");
    const svl = serviceLocalChain(spn, "tcp");
    const svc = serviceClusterChain(spn, "tcp");
    const text = buildIptablesRules([local], [webEps], node, cfg);
    const all = lines(text);
    expect(all).toEqual(
      expect.arrayContaining([
        `-A ${ext} -m comment --comment "pod traffic for ${spn} external destinations" -s 10.244.0.0/16 -j ${svc}`,
        `-A ${ext} -m comment --comment "masquerade LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
        `-A ${ext} -m comment --comment "route LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j ${svc}`,
        `-A ${ext} -j ${svl}`,
        `-A KUBE-NODEPORTS -m comment --comment "${spn} health check node port" -m tcp -p tcp --dport 32000 -j ACCEPT`,
      ]),
    );
    // KUBE-SVL holds only this node's two endpoints.
    const svlRules = all.filter((l) => l.startsWith(`-A ${svl} `));
    expect(svlRules).toHaveLength(2);
    expect(svlRules[0]).toContain("10.244.1.5:8080");
    expect(svlRules[0]).toContain("--probability 0.5000000000");
    expect(svlRules[1]).toContain("10.244.1.6:8080");

    // On a node with no local endpoint, external traffic is dropped (and no KUBE-SVL exists).
    const other = buildIptablesRules([local], [webEps], { name: "node-3", ips: ["172.29.0.5"] }, cfg);
    expect(other).toContain(
      `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${spn} has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP`,
    );
    expect(other).not.toContain(svl);
    expect(other).not.toContain(`-A ${ext} -j`);
  });

  it("sends cluster IP traffic only to local endpoints under internalTrafficPolicy Local", () => {
    const itp = service("default", "web", {
      clusterIP: "10.96.100.10",
      internalTrafficPolicy: "Local",
      ports: [tcp("http", 80)],
    });
    const svl = serviceLocalChain("default/web:http", "tcp");
    expect(buildIptablesRules([itp], [webEps], node, cfg)).toContain(`--dport 80 -j ${svl}`);
    expect(buildIptablesRules([itp], [webEps], "node-9", cfg)).toContain(
      '-A KUBE-SERVICES -m comment --comment "default/web:http has no local endpoints" -m tcp -p tcp -d 10.96.100.10 --dport 80 -j DROP',
    );
  });

  it("pins ClientIP affinity with recent-match rules", () => {
    const sticky = service("default", "web", {
      clusterIP: "10.96.100.10",
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      ports: [tcp("http", 80)],
    });
    const text = buildIptablesRules([sticky], [webEps], node, cfg);
    const sep = endpointChain("default/web:http", "tcp", "10.244.1.5:8080");
    expect(text).toContain(
      `-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m recent --name ${sep} --rcheck --seconds 600 --reap -j ${sep}`,
    );
    expect(text).toContain(
      `-A ${sep} -m comment --comment default/web:http -m recent --name ${sep} --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080`,
    );
    const defaultTimeout = { ...sticky, spec: { ...sticky.spec, sessionAffinityConfig: undefined } };
    expect(buildIptablesRules([defaultTimeout], [webEps], node, cfg)).toContain(
      "--rcheck --seconds 10800 --reap",
    );
  });

  it("falls back to serving terminating endpoints when none is ready", () => {
    const draining = slice(
      "default",
      "web",
      [{ name: "http", port: 8080 }],
      [
        ep("10.244.1.5", "node-1", { ready: false, serving: true, terminating: true }),
        ep("10.244.2.7", "node-2", { ready: false, serving: false, terminating: true }),
      ],
    );
    const text = buildIptablesRules([web], [draining], node, cfg);
    expect(text).toContain("--to-destination 10.244.1.5:8080");
    expect(text).not.toContain("10.244.2.7");
    // One ready endpoint wins over the terminating ones.
    const mixed = slice(
      "default",
      "web",
      [{ name: "http", port: 8080 }],
      [
        ep("10.244.1.5", "node-1", { ready: false, serving: true, terminating: true }),
        ep("10.244.2.8", "node-2"),
      ],
    );
    const t2 = buildIptablesRules([web], [mixed], node, cfg);
    expect(t2).toContain("10.244.2.8:8080");
    expect(t2).not.toContain("10.244.1.5");
  });

  it("deletes stale service chains and leaves others alone", () => {
    const text = buildIptablesRules([web], [webEps], node, {
      ...cfg,
      existingNatChains: [
        "KUBE-SVC-AAAAAAAAAAAAAAAA",
        "KUBE-SEP-BBBBBBBBBBBBBBBB",
        "CNI-HOSTPORT-DNAT",
        "KUBE-SVC-CDGGSHYLG3RE2FKL",
      ],
    });
    expect(lines(text)).toEqual(
      expect.arrayContaining([
        ":KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]",
        "-X KUBE-SVC-AAAAAAAAAAAAAAAA",
        "-X KUBE-SEP-BBBBBBBBBBBBBBBB",
      ]),
    );
    expect(text).not.toContain("CNI-HOSTPORT-DNAT");
    expect(text).not.toContain("-X KUBE-SVC-CDGGSHYLG3RE2FKL");
  });

  it("drops per-endpoint comments above 1000 endpoints, as kube-proxy's large-cluster mode does", () => {
    const r = buildIptablesRuleset([web], [webEps], node, { ...cfg, largeClusterEndpointsThreshold: 2 });
    expect(r.text).toContain("-A KUBE-SEP-AFGSLHOD2HFNCBX4 -s 10.244.1.5 -j KUBE-MARK-MASQ");
    expect(r.text).toContain(
      "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m statistic --mode random --probability 0.3333333333",
    );
  });

  it("writes one nodeports jump per node address when --nodeport-addresses is set", () => {
    const text = buildIptablesRules([web], [webEps], node, { ...cfg, nodePortAddresses: ["172.29.0.0/16"] });
    expect(text).toContain(
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 172.29.0.3 -j KUBE-NODEPORTS',
    );
    expect(text).not.toContain("--dst-type LOCAL -j KUBE-NODEPORTS");
  });

  it("masquerades every cluster IP connection with masqueradeAll, none without a cluster CIDR", () => {
    expect(buildIptablesRules([web], [webEps], node, { masqueradeAll: true })).toContain(
      '-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 -j KUBE-MARK-MASQ',
    );
    expect(buildIptablesRules([web], [webEps], node, {})).not.toContain(
      'cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 ! -s',
    );
  });

  it("ignores headless and ExternalName Services", () => {
    const headless = service("default", "db", { clusterIP: "None", ports: [tcp("pg", 5432)] });
    const ext = service("default", "ext", { type: "ExternalName", externalName: "api.example.com" });
    const r = buildIptablesRuleset([headless, ext], [], node, cfg);
    expect(r.servicePorts).toHaveLength(0);
  });

  it("lists the jumps from the built-in chains kube-proxy ensures", () => {
    const jumps = iptablesJumpRules();
    expect(jumps).toContainEqual({
      table: "nat",
      chain: "PREROUTING",
      rule: '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    });
    expect(jumps).toContainEqual({
      table: "filter",
      chain: "INPUT",
      rule: '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    });
  });
});

/**
 * Cluster DNS in a `klab up` lab, seen from inside pods with the real `dig` and `nslookup` and the
 * pod's own /etc/resolv.conf (nameserver 10.96.0.10, the kubelet's search path, ndots:5): every
 * record form of the Kubernetes DNS specification, the search path, NXDOMAIN against NODATA, TTLs
 * and flags as CoreDNS gives them with the guide's Corefile; then `kubectl edit cm coredns`, killing
 * a CoreDNS pod under a query loop, and the health/ready/metrics endpoints.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab, type PodInfo } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

interface RR {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

interface Dig {
  status: string;
  flags: string[];
  question: string;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  raw: string;
}

function parseDig(text: string): Dig {
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? "";
  const flags = (/;; flags: ([a-z ]*);/.exec(text)?.[1] ?? "").trim().split(/\s+/);
  const section = (title: string): RR[] => {
    const at = text.indexOf(`;; ${title} SECTION:\n`);
    if (at < 0) return [];
    const body = text.slice(at).split("\n").slice(1);
    const out: RR[] = [];
    for (const line of body) {
      if (!line.trim() || line.startsWith(";")) break;
      const [name, ttl, , type, ...data] = line.split(/\s+/);
      out.push({ name: name!, ttl: Number(ttl), type: type!, data: data.join(" ") });
    }
    return out;
  };
  const question = (/;; QUESTION SECTION:\n;(\S+)/.exec(text)?.[1] ?? "").toLowerCase();
  return {
    status,
    flags,
    question,
    answer: section("ANSWER"),
    authority: section("AUTHORITY"),
    additional: section("ADDITIONAL"),
    raw: text,
  };
}

// every case runs several kubectl execs: minutes on a machine shared with other labs
const CASE_MS = 240_000;
const SETUP_MS = 420_000;
const NS = "dnslab-a";
const OTHER = "dnslab-b";

const manifests = `
apiVersion: v1
kind: Namespace
metadata: { name: ${NS} }
---
apiVersion: v1
kind: Namespace
metadata: { name: ${OTHER} }
---
apiVersion: v1
kind: Pod
metadata: { name: pet, namespace: ${NS}, labels: { app: web } }
spec:
  hostname: pet
  subdomain: web-headless
  containers:
    - name: web
      image: registry.k8s.io/e2e-test-images/agnhost:2.47
      args: ["netexec", "--http-port=8080"]
      ports: [{ name: http, containerPort: 8080 }]
      readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 2 }
---
apiVersion: v1
kind: Pod
metadata: { name: web-plain, namespace: ${NS}, labels: { app: web } }
spec:
  containers:
    - name: web
      image: registry.k8s.io/e2e-test-images/agnhost:2.47
      args: ["netexec", "--http-port=8080"]
      ports: [{ name: http, containerPort: 8080 }]
      readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 2 }
---
apiVersion: v1
kind: Pod
metadata: { name: web-unready, namespace: ${NS}, labels: { app: web } }
spec:
  containers:
    - name: web
      image: registry.k8s.io/e2e-test-images/agnhost:2.47
      args: ["netexec", "--http-port=8080"]
      readinessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 2 }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${NS}, labels: { app: client } }
spec:
  containers:
    - name: client
      image: busybox
      command: ["sleep", "86400"]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${NS} }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: web-headless, namespace: ${NS} }
spec:
  clusterIP: None
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: ext, namespace: ${NS} }
spec:
  type: ExternalName
  externalName: api.example.com
---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: ${OTHER} }
spec:
  ports: [{ name: http, port: 80, protocol: TCP }]
`;

const zone = "cluster.local";
const reverse = (ip: string) => `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;
const dashed = (ip: string) => ip.replace(/\./g, "-");

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "dig", "nslookup"] },
  "cluster DNS in klab up, from inside pods (dig, nslookup)",
  () => {
    let lab: Lab;
    let client: PodInfo;
    let pet: PodInfo;
    let plain: PodInfo;
    let unready: PodInfo;
    const ip: Record<string, string> = {};

    const digIn = async (pod: string, args: string[]): Promise<Dig> => {
      const r = await lab.exec(NS, pod, ["dig", ...args], 90_000);
      if (r.code !== 0 && !r.stdout.includes("status:"))
        throw new Error(`dig ${args.join(" ")} failed (${r.code}): ${r.stdout}${r.stderr}`);
      return parseDig(r.stdout);
    };
    const dig = (...args: string[]) => digIn(client.name, args);
    /** `dig +search +showsearch`: the reply of every step of the search path, in order. */
    const digSearch = async (name: string): Promise<Dig[]> => {
      const r = await lab.exec(NS, client.name, ["dig", "+search", "+showsearch", name], 90_000);
      const parts = r.stdout.split(";; Got answer:").slice(1);
      if (parts.length === 0) throw new Error(`dig +search +showsearch ${name}: ${r.stdout}${r.stderr}`);
      return parts.map(parseDig);
    };
    const nslookup = (...args: string[]) => lab.exec(NS, client.name, ["nslookup", ...args], 90_000);

    beforeAll(async () => {
      lab = await startLab({ prefix: "kdns", bare: true });
      await lab.kubectlOk(["apply", "-f", "-"], { input: manifests });
      await lab.waitReady("kube-system", "k8s-app=kube-dns", 2, SETUP_MS);
      [client] = await lab.waitReady(NS, "app=client", 1, SETUP_MS);
      // two Ready web pods and one that never gets Ready
      const webs = await until("pet and web-plain Ready, web-unready Running", SETUP_MS, async () => {
        const p = await lab.pods(NS, "app=web");
        const by = Object.fromEntries(p.map((x) => [x.name, x]));
        return by.pet?.ready && by["web-plain"]?.ready && by["web-unready"] && !by["web-unready"].ready
          ? by
          : undefined;
      }).catch(async (err: Error) => {
        const state = await lab.kubectl(["-n", NS, "get", "pods", "-o", "wide"]);
        throw new Error(`${err.message}\n${state.stdout}${state.stderr}`);
      });
      [pet, plain, unready] = [webs.pet!, webs["web-plain"]!, webs["web-unready"]!];
      for (const [svcNs, svc] of [
        [NS, "web"],
        [OTHER, "other"],
      ] as const)
        ip[svc] = await lab.kubectlOk(["-n", svcNs, "get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"]);
      // the headless Service's records follow its EndpointSlice: wait until both Ready pods are in it
      await until("web-headless answering both Ready pods", 120_000, async () => {
        const d = await dig("+search", "web-headless");
        return d.answer.length === 2 ? d : undefined;
      });
    }, 1_500_000);

    afterAll(async () => {
      await lab?.down();
    }, 180_000);

    it(
      "gives pods the kubelet's resolv.conf (ClusterFirst)",
      async () => {
        const r = await lab.exec(NS, client.name, ["cat", "/etc/resolv.conf"]);
        expect(r.stdout).toContain(`search ${NS}.svc.${zone} svc.${zone} ${zone}`);
        expect(r.stdout).toContain("nameserver 10.96.0.10");
        expect(r.stdout).toContain("options ndots:5");
      },
      CASE_MS,
    );

    it(
      "answers a ClusterIP Service A record, authoritative, with the kubernetes plugin's TTL",
      async () => {
        const d = await dig("+search", "web");
        expect(d.status).toBe("NOERROR");
        expect(d.question).toBe(`web.${NS}.svc.${zone}.`);
        expect(d.flags).toEqual(expect.arrayContaining(["qr", "aa", "rd"]));
        // cluster answers come from the kubernetes plugin, which does not recurse
        expect(d.flags).not.toContain("ra");
        expect(d.answer).toHaveLength(1);
        expect(d.answer[0]).toMatchObject({ name: `web.${NS}.svc.${zone}.`, type: "A", data: ip.web });
        // ttl 5 (the plugin's default; the guide's Corefile sets none), aged by cache 30
        expect(d.answer[0]!.ttl).toBeGreaterThanOrEqual(0);
        expect(d.answer[0]!.ttl).toBeLessThanOrEqual(5);
        const fq = await dig(`web.${NS}.svc.${zone}`);
        expect(fq.answer.map((a) => a.data)).toEqual([ip.web]);
        const ns = await nslookup("web");
        expect(ns.code).toBe(0);
        expect(ns.stdout).toContain("Server:\t\t10.96.0.10");
        expect(ns.stdout).toMatch(
          new RegExp(`Name:\\s+web\\.${NS}\\.svc\\.cluster\\.local\\s+Address: ${ip.web}`),
        );
      },
      CASE_MS,
    );

    it(
      "answers a headless Service with one A per Ready endpoint",
      async () => {
        const d = await dig("+search", "web-headless");
        expect(d.status).toBe("NOERROR");
        expect(d.flags).toContain("aa");
        expect(d.answer.map((a) => a.data).sort()).toEqual([pet.ip, plain.ip].sort());
        expect(d.answer.map((a) => a.data)).not.toContain(unready.ip);
        for (const a of d.answer)
          expect(a).toMatchObject({ name: `web-headless.${NS}.svc.${zone}.`, type: "A" });
        const ns = await nslookup("web-headless");
        expect(ns.stdout).toContain(`Address: ${pet.ip}`);
        expect(ns.stdout).toContain(`Address: ${plain.ip}`);
      },
      CASE_MS,
    );

    it(
      "answers pod A records a-b-c-d.<ns>.pod.<zone> (pods insecure)",
      async () => {
        const d = await dig("+search", `${dashed(plain.ip)}.${NS}.pod`);
        expect(d.status).toBe("NOERROR");
        expect(d.question).toBe(`${dashed(plain.ip)}.${NS}.pod.${zone}.`);
        expect(d.answer).toEqual([
          expect.objectContaining({
            name: `${dashed(plain.ip)}.${NS}.pod.${zone}.`,
            type: "A",
            data: plain.ip,
          }),
        ]);
      },
      CASE_MS,
    );

    it(
      "answers hostname.subdomain for a pod with spec.hostname and spec.subdomain behind a headless Service",
      async () => {
        const d = await dig("+search", "pet.web-headless");
        expect(d.status).toBe("NOERROR");
        expect(d.question).toBe(`pet.web-headless.${NS}.svc.${zone}.`);
        expect(d.answer).toEqual([expect.objectContaining({ type: "A", data: pet.ip })]);
        const ns = await nslookup(`pet.web-headless.${NS}.svc.${zone}`);
        expect(ns.stdout).toContain(`Address: ${pet.ip}`);
      },
      CASE_MS,
    );

    it(
      "answers an ExternalName Service with a CNAME, chased to the target's address",
      async () => {
        const d = await dig("+search", "ext");
        expect(d.status).toBe("NOERROR");
        expect(d.answer[0]).toMatchObject({
          name: `ext.${NS}.svc.${zone}.`,
          type: "CNAME",
          data: "api.example.com.",
        });
        expect(d.answer.slice(1)).toEqual([
          expect.objectContaining({ name: "api.example.com.", type: "A", data: "203.0.113.10" }),
        ]);
        const c = await dig("+search", "ext", "CNAME");
        expect(c.answer).toEqual([expect.objectContaining({ type: "CNAME", data: "api.example.com." })]);
      },
      CASE_MS,
    );

    it(
      "answers SRV for named ports: the Service, and one per endpoint of the headless Service",
      async () => {
        // `_http._tcp.web` has fewer than 5 dots, so the search path completes it (why ndots is 5)
        const d = await dig("+search", "_http._tcp.web", "SRV");
        expect(d.status).toBe("NOERROR");
        expect(d.question).toBe(`_http._tcp.web.${NS}.svc.${zone}.`);
        expect(d.answer).toHaveLength(1);
        expect(d.answer[0]!.data).toBe(`0 100 80 web.${NS}.svc.${zone}.`);
        expect(d.additional).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: `web.${NS}.svc.${zone}.`, data: ip.web })]),
        );
        const h = await dig(`_http._tcp.web-headless.${NS}.svc.${zone}`, "SRV");
        expect(h.status).toBe("NOERROR");
        const targets = h.answer.map((a) => a.data.split(" "));
        // a headless Service's SRV carries the endpoint's port (the targetPort), not the Service port
        expect(targets.map((t) => t[2])).toEqual(["8080", "8080"]);
        // weight: 100 shared among the records, as CoreDNS divides it
        expect(targets.map((t) => t[1])).toEqual(["50", "50"]);
        expect(targets.map((t) => t[3]).sort()).toEqual(
          [
            `pet.web-headless.${NS}.svc.${zone}.`,
            `${dashed(plain.ip)}.web-headless.${NS}.svc.${zone}.`,
          ].sort(),
        );
        // the targets' addresses ride in the additional section
        expect(
          h.additional
            .filter((a) => a.type === "A")
            .map((a) => a.data)
            .sort(),
        ).toEqual([pet.ip, plain.ip].sort());
        const ns = await nslookup("-type=srv", "_http._tcp.web");
        expect(ns.stdout).toContain(`service = 0 100 80 web.${NS}.svc.${zone}.`);
        // an unknown port name has no SRV: NXDOMAIN
        const none = await dig(`_nope._tcp.web.${NS}.svc.${zone}`, "SRV");
        expect(none.status).toBe("NXDOMAIN");
      },
      CASE_MS,
    );

    it(
      "answers PTR for a Service ClusterIP and for a pod IP",
      async () => {
        const s = await dig("-x", ip.web!);
        expect(s.status).toBe("NOERROR");
        expect(s.flags).toContain("aa");
        expect(s.answer).toEqual([
          expect.objectContaining({ name: reverse(ip.web!), type: "PTR", data: `web.${NS}.svc.${zone}.` }),
        ]);
        // a pod IP names the pod once per Service whose endpoints hold it: its hostname in the
        // headless Service, its dashed IP in the ClusterIP Service
        const p = await dig("-x", pet.ip);
        expect(p.status).toBe("NOERROR");
        expect(p.answer.map((a) => a.data).sort()).toEqual(
          [`pet.web-headless.${NS}.svc.${zone}.`, `${dashed(pet.ip)}.web.${NS}.svc.${zone}.`].sort(),
        );
        const ns = await nslookup(ip.web!);
        expect(ns.stdout).toContain(`${reverse(ip.web!).slice(0, -1)}\tname = web.${NS}.svc.${zone}.`);
      },
      CASE_MS,
    );

    it(
      "walks the search path: a short name resolves in its namespace, another namespace needs .ns",
      async () => {
        // +showsearch prints every step: each search domain in turn, then the name as given
        const short = await digSearch("other");
        expect(short.map((d) => d.question)).toEqual([
          `other.${NS}.svc.${zone}.`,
          `other.svc.${zone}.`,
          `other.${zone}.`,
          "other.",
        ]);
        for (const d of short.slice(0, 3)) {
          expect(d.status).toBe("NXDOMAIN");
          expect(d.authority[0]).toMatchObject({ name: `${zone}.`, type: "SOA" });
        }
        // the last step leaves the cluster (forward . /etc/resolv.conf); the emulated internet has no `other.`
        expect(short[3]!.answer).toEqual([]);
        expect(short[3]!.status).not.toBe("NOERROR");
        const ns = await nslookup("other");
        expect(ns.code).not.toBe(0);
        expect(ns.stdout).not.toContain(ip.other);
        const withNs = await digSearch(`other.${OTHER}`);
        expect(withNs.map((d) => d.question)).toEqual([
          `other.${OTHER}.${NS}.svc.${zone}.`,
          `other.${OTHER}.svc.${zone}.`,
        ]);
        expect(withNs[0]!.status).toBe("NXDOMAIN");
        expect(withNs[1]!.status).toBe("NOERROR");
        expect(withNs[1]!.answer.map((a) => a.data)).toEqual([ip.other]);
        const nsOther = await nslookup(`other.${OTHER}`);
        expect(nsOther.stdout).toMatch(
          new RegExp(`Name:\\s+other\\.${OTHER}\\.svc\\.cluster\\.local\\s+Address: ${ip.other}`),
        );
        // a ClusterIP Service without endpoints still answers its ClusterIP
        const svc = await dig("+search", `other.${OTHER}.svc`);
        expect(svc.answer.map((a) => a.data)).toEqual([ip.other]);
      },
      CASE_MS,
    );

    it(
      "tells NODATA from NXDOMAIN, with CoreDNS's SOA in the authority section",
      async () => {
        const nodata = await dig(`web.${NS}.svc.${zone}`, "AAAA");
        expect(nodata.status).toBe("NOERROR");
        expect(nodata.flags).toContain("aa");
        expect(nodata.answer).toEqual([]);
        expect(nodata.authority).toHaveLength(1);
        const soa = nodata.authority[0]!;
        expect(soa).toMatchObject({ name: `${zone}.`, type: "SOA" });
        expect(soa.ttl).toBeLessThanOrEqual(5);
        // mname rname serial refresh retry expire minimum
        expect(soa.data).toMatch(
          new RegExp(`^ns\\.dns\\.${zone}\\. hostmaster\\.${zone}\\. \\d+ 7200 1800 86400 5$`),
        );
        const nx = await dig(`missing.${NS}.svc.${zone}`, "A");
        expect(nx.status).toBe("NXDOMAIN");
        expect(nx.flags).toContain("aa");
        expect(nx.answer).toEqual([]);
        expect(nx.authority[0]).toMatchObject({ name: `${zone}.`, type: "SOA" });
        const nsl = await nslookup(`missing.${NS}.svc.${zone}`);
        expect(nsl.stdout).toContain(`** server can't find missing.${NS}.svc.${zone}: NXDOMAIN`);
        // the schema version TXT: 28800 s in the plugin, capped at 30 s by cache 30
        const v = await dig(`dns-version.${zone}`, "TXT");
        expect(v.answer).toEqual([expect.objectContaining({ type: "TXT", data: '"1.1.0"' })]);
        expect(v.answer[0]!.ttl).toBeGreaterThan(5);
        expect(v.answer[0]!.ttl).toBeLessThanOrEqual(30);
      },
      CASE_MS,
    );

    it(
      "forwards names outside the cluster (forward . /etc/resolv.conf) after walking the search path",
      async () => {
        // api.example.com has fewer than 5 dots: the three cluster suffixes are tried first (ndots:5)
        const steps = await digSearch("api.example.com");
        expect(steps.map((d) => d.question)).toEqual([
          `api.example.com.${NS}.svc.${zone}.`,
          `api.example.com.svc.${zone}.`,
          `api.example.com.${zone}.`,
          "api.example.com.",
        ]);
        expect(steps.slice(0, 3).map((d) => d.status)).toEqual(["NXDOMAIN", "NXDOMAIN", "NXDOMAIN"]);
        const d = steps[3]!;
        expect(d.status).toBe("NOERROR");
        expect(d.answer).toEqual([expect.objectContaining({ type: "A", data: "203.0.113.10" })]);
        // with the trailing dot the name is absolute: one query
        const abs = await digSearch("api.example.com.");
        expect(abs.map((x) => x.question)).toEqual(["api.example.com."]);
      },
      CASE_MS,
    );

    it(
      "serves /health, /ready and /metrics on the CoreDNS pod IPs",
      async () => {
        const dns = await lab.pods("kube-system", "k8s-app=kube-dns");
        expect(dns).toHaveLength(2);
        for (const p of dns) {
          const get = (port: number, path: string) =>
            lab.exec(NS, client.name, [
              "curl",
              "-s",
              "-m",
              "10",
              "-w",
              "\\n%{http_code}",
              `http://${p.ip}:${port}${path}`,
            ]);
          expect((await get(8080, "/health")).stdout).toBe("OK\n200");
          expect((await get(8181, "/ready")).stdout).toBe("OK\n200");
          const m = await get(9153, "/metrics");
          expect(m.stdout).toMatch(/\n200$/);
          expect(m.stdout).toMatch(
            /^coredns_dns_requests_total\{server="dns:\/\/:53",zone="\.",view="",proto="udp",family="1",type="A"\} \d+/m,
          );
          expect(m.stdout).toContain("coredns_build_info{");
          expect(m.stdout).toMatch(/^coredns_cache_entries\{/m);
          // and from the node, as the kubelet's probes reach them
          const fromNode = await lab.klab(
            [
              "exec-node",
              "--name",
              lab.name,
              p.node,
              "--",
              "curl",
              "-s",
              "-m",
              "10",
              `http://${p.ip}:8181/ready`,
            ],
            { timeoutMs: 60_000 },
          );
          expect(fromNode.stdout).toBe("OK");
        }
      },
      CASE_MS,
    );

    it("takes a hosts entry added with kubectl edit cm coredns within seconds", async () => {
      const dir = mkdtempSync(join(tmpdir(), "klab-dns-edit-"));
      try {
        const editor = join(dir, "edit.sh");
        // inserts a hosts block after `ready`, keeping the Corefile's indentation inside the YAML
        writeFileSync(
          editor,
          [
            "#!/bin/sh",
            'f="$1"',
            'awk \'{ print } /^ *ready *$/ && !done { i = substr($0, 1, index($0, "ready") - 1);',
            '  print i "hosts {"; print i "   203.0.113.77 legacy-db.corp.example"; print i "   fallthrough"; print i "}"; done = 1 }\' "$f" > "$f.new"',
            'mv "$f.new" "$f"',
            "",
          ].join("\n"),
        );
        chmodSync(editor, 0o755);
        const before = await dig("legacy-db.corp.example");
        expect(before.answer).toEqual([]);
        const started = Date.now();
        const edit = await runCommand(
          "kubectl",
          ["--kubeconfig", lab.kubeconfig, "-n", "kube-system", "edit", "cm", "coredns"],
          {
            env: { ...lab.env, KUBE_EDITOR: editor },
            timeoutMs: 60_000,
          },
        );
        expect(edit.code, edit.stderr).toBe(0);
        expect(edit.stdout).toContain("configmap/coredns edited");
        const corefile = await lab.kubectlOk([
          "-n",
          "kube-system",
          "get",
          "cm",
          "coredns",
          "-o",
          "jsonpath={.data.Corefile}",
        ]);
        expect(corefile).toMatch(
          /hosts \{\n\s+203\.0\.113\.77 legacy-db\.corp\.example\n\s+fallthrough\n\s+\}/,
        );
        // both replicas must have reloaded: ask each pod directly
        const dns = await lab.pods("kube-system", "k8s-app=kube-dns");
        for (const p of dns)
          await until(
            `legacy-db.corp.example from ${p.name}`,
            240_000,
            async () => {
              const d = await dig(`@${p.ip}`, "legacy-db.corp.example");
              return d.answer.some((a) => a.data === "203.0.113.77") ? d : undefined;
            },
            1000,
          );
        const seconds = (Date.now() - started) / 1000;
        console.log(
          `lab-dns: the hosts entry answered from both CoreDNS pods ${seconds.toFixed(1)} s after kubectl edit`,
        );
        const d = await dig("+search", "legacy-db.corp.example");
        expect(d.answer).toEqual([expect.objectContaining({ type: "A", data: "203.0.113.77" })]);
        expect(d.flags).toContain("aa");
        // cluster names still answer after the reload
        expect((await dig("+search", "web")).answer.map((a) => a.data)).toEqual([ip.web]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 300_000);

    /** Runs `seconds` of back-to-back lookups in the client pod; returns every lookup's outcome. */
    const queryLoop = (seconds: number) =>
      lab.exec(
        NS,
        client.name,
        [
          "sh",
          "-c",
          `end=$(( $(date +%s) + ${seconds} )); while [ $(date +%s) -lt $end ]; do ` +
            `a=$(dig +search +short web); last=$(echo "$a" | tail -n 1); ` +
            `if [ "$a" = "${ip.web}" ]; then echo ok; elif [ "$last" = "${ip.web}" ]; then echo retried; else echo "fail: $a" | tr '\\n' ' '; echo; fi; sleep 0.1; done`,
        ],
        (seconds + 120) * 1000,
      );

    for (const how of ["forced", "graceful"] as const)
      it(`keeps resolving while one CoreDNS pod is deleted (${how})`, async () => {
        const before = await lab.waitReady("kube-system", "k8s-app=kube-dns", 2);
        const loop = queryLoop(40);
        await new Promise((r) => setTimeout(r, 5000));
        const victim = before[0]!;
        const del =
          how === "forced"
            ? ["-n", "kube-system", "delete", "pod", victim.name, "--grace-period=0", "--force"]
            : ["-n", "kube-system", "delete", "pod", victim.name, "--wait=false"];
        await lab.kubectlOk(del);
        const r = await loop;
        const lines = r.stdout.trim().split("\n");
        // dig's own retries (3 tries, 5 s apart) are part of a lookup, as in any pod's resolver: a
        // query that went to the killed pod before kube-proxy dropped its endpoint is asked again
        const failed = lines.filter((l) => l !== "ok" && l !== "retried");
        const retried = lines.filter((l) => l === "retried").length;
        console.log(
          `lab-dns: ${how} delete of ${victim.name}: ${lines.length} lookups, ${retried} answered after a retry, ${failed.length} unanswered`,
        );
        expect(failed, failed.join("\n")).toEqual([]);
        expect(lines.length).toBeGreaterThan(10);
        // the Deployment replaces the pod
        const after = await lab.waitReady("kube-system", "k8s-app=kube-dns", 2);
        expect(after.map((p) => p.name)).not.toContain(victim.name);
      }, 400_000);
  },
);

// A kube-proxy ruleset (as kube-proxy v1.32 writes it) for the NAT package's own tests and
// benchmarks: web (3 endpoints, ClusterIP 10.96.100.10:80, NodePort 30080), sticky (ClientIP
// affinity) and empty (no endpoints).

export const KUBE_PROXY_JUMPS = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
COMMIT
`;

export const KUBE_PROXY_RULES = `*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d 10.96.0.99 --dport 80 -j REJECT
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-2RIJ5GIYXEFH6G4D - [0:0]
:KUBE-SEP-AFGSLHOD2HFNCBX4 - [0:0]
:KUBE-SEP-F7BHZ7WL3PFYMSRY - [0:0]
:KUBE-SEP-STICKY1AAAAAAAAA - [0:0]
:KUBE-SEP-STICKY2AAAAAAAAA - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SVC-STICKYAAAAAAAAAA - [0:0]
-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -m comment --comment "default/sticky:http cluster IP" -m tcp -p tcp -d 10.96.100.20 --dport 80 -j KUBE-SVC-STICKYAAAAAAAAAA
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVC-CDGGSHYLG3RE2FKL
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
-A KUBE-SEP-STICKY1AAAAAAAAA -m comment --comment default/sticky:http -s 10.244.1.8 -j KUBE-MARK-MASQ
-A KUBE-SEP-STICKY1AAAAAAAAA -m comment --comment default/sticky:http -m recent --name KUBE-SEP-STICKY1AAAAAAAAA --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.8:80
-A KUBE-SEP-STICKY2AAAAAAAAA -m comment --comment default/sticky:http -s 10.244.2.8 -j KUBE-MARK-MASQ
-A KUBE-SEP-STICKY2AAAAAAAAA -m comment --comment default/sticky:http -m recent --name KUBE-SEP-STICKY2AAAAAAAAA --set -m tcp -p tcp -j DNAT --to-destination 10.244.2.8:80
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.100.10 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-AFGSLHOD2HFNCBX4
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.6:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-F7BHZ7WL3PFYMSRY
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.7:8080" -j KUBE-SEP-2RIJ5GIYXEFH6G4D
-A KUBE-SVC-STICKYAAAAAAAAAA -m comment --comment "default/sticky:http -> 10.244.1.8:80" -m recent --name KUBE-SEP-STICKY1AAAAAAAAA --rcheck --seconds 10800 --reap -j KUBE-SEP-STICKY1AAAAAAAAA
-A KUBE-SVC-STICKYAAAAAAAAAA -m comment --comment "default/sticky:http -> 10.244.2.8:80" -m recent --name KUBE-SEP-STICKY2AAAAAAAAA --rcheck --seconds 10800 --reap -j KUBE-SEP-STICKY2AAAAAAAAA
-A KUBE-SVC-STICKYAAAAAAAAAA -m comment --comment "default/sticky:http -> 10.244.1.8:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-STICKY1AAAAAAAAA
-A KUBE-SVC-STICKYAAAAAAAAAA -m comment --comment "default/sticky:http -> 10.244.2.8:80" -j KUBE-SEP-STICKY2AAAAAAAAA
COMMIT
`;

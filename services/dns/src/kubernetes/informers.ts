/**
 * The cluster state from the API server: informers on Services, EndpointSlices, Namespaces
 * and (for `pods verified`) Pods, through @klab/client. Credentials come from `kubeconfig`,
 * `endpoint`, or the in-cluster service account.
 */
import type { EndpointSlice, Namespace, Pod, Service } from "@klab/api";
import { Informer, KubeClient, inClusterConnection, serviceAccountDir } from "@klab/client";
import { LazyIndex, type ClusterSource, type ClusterSourceOptions } from "./source.ts";

export function clientFor(options: ClusterSourceOptions): KubeClient {
  if (options.kubeconfig)
    return KubeClient.fromKubeconfig(options.kubeconfig.path, options.kubeconfig.context);
  if (options.endpoint) return new KubeClient({ server: options.endpoint });
  // In-cluster: KUBERNETES_SERVICE_HOST/PORT and the pod's service account files.
  return new KubeClient(inClusterConnection(process.env, options.serviceAccountDir ?? serviceAccountDir));
}

export class InformerSource implements ClusterSource {
  private readonly client: KubeClient;
  private readonly services: Informer<Service>;
  private readonly slices?: Informer<EndpointSlice>;
  private readonly pods?: Informer<Pod>;
  private readonly namespaces: Informer<Namespace>;
  private readonly lazy: LazyIndex;

  constructor(
    private readonly options: ClusterSourceOptions,
    client = clientFor(options),
  ) {
    this.client = client;
    this.services = new Informer<Service>(client, "v1", "services");
    this.namespaces = new Informer<Namespace>(client, "v1", "namespaces");
    if (options.watchEndpoints)
      this.slices = new Informer<EndpointSlice>(client, "discovery.k8s.io/v1", "endpointslices");
    if (options.watchPods) this.pods = new Informer<Pod>(client, "v1", "pods");
    this.lazy = new LazyIndex(() => ({
      services: this.services.list(),
      endpointSlices: this.slices?.list() ?? [],
      pods: this.pods?.list() ?? [],
      namespaces: this.namespaces.list(),
    }));
    const watch = (inf: Informer<never> | undefined, kind: "service" | "endpoints" | "pod" | "namespace") => {
      if (!inf) return;
      const changed = () => {
        this.lazy.invalidate();
        options.onChange?.(kind);
      };
      inf.on("add", changed);
      inf.on("update", changed);
      inf.on("delete", changed);
      inf.on("sync", changed);
    };
    if (this.slices) {
      const slices = this.slices;
      const programmed = (slice: EndpointSlice) => {
        if (slices.hasSynced) options.onEndpointSliceChange?.(slice);
      };
      slices.on("add", programmed);
      slices.on("update", programmed);
    }
    watch(this.services as Informer<never>, "service");
    watch(this.slices as Informer<never> | undefined, "endpoints");
    watch(this.pods as Informer<never> | undefined, "pod");
    watch(this.namespaces as Informer<never>, "namespace");
  }

  private all(): Informer<never>[] {
    return [this.services, this.slices, this.pods, this.namespaces].filter(
      (i) => i !== undefined,
    ) as Informer<never>[];
  }

  async start(): Promise<void> {
    for (const inf of this.all()) inf.on("error", (err) => this.options.onError?.(err, inf.plural));
    await Promise.all(this.all().map((i) => i.start()));
  }

  stop(): void {
    for (const i of this.all()) i.stop();
    void this.client.close();
  }

  hasSynced(): boolean {
    return this.all().every((i) => i.hasSynced);
  }

  index() {
    return this.lazy.get();
  }
}

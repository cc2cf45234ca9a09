/**
 * A small REST + watch client for the Kubernetes API, used by every klab service the way
 * client-go is used by the real components. It speaks JSON over HTTPS with undici.
 */
import { Agent, type Dispatcher } from "undici";
import { resourceForKind, type KubeObject } from "@klab/api";
import { resolveConnection, loadKubeconfig, inClusterConnection, type Connection } from "./kubeconfig.ts";

export type PatchType = "json" | "merge" | "strategic";

const patchContentTypes: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

/** The `Status` object the API server returns with an error, kept whole for callers. */
export interface StatusBody {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly status: StatusBody,
    readonly method: string,
    readonly path: string,
  ) {
    super(status.message ?? `${method} ${path}: HTTP ${code}`);
  }
  get reason(): string | undefined {
    return this.status.reason;
  }
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface List<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface Watch {
  /** Settles when the stream ends: resolves on a normal close, rejects on a transport error. */
  done: Promise<void>;
  stop(): void;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  dryRun?: boolean;
}

/** The REST path of a collection or object: /api/v1/namespaces/ns/pods/name/status */
export function resourcePath(
  apiVersion: string,
  plural: string,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  let path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) q.set(key, String(value));
  const s = q.toString();
  return s ? `?${s}` : "";
}

function objectPath(obj: KubeObject, subresource?: string, withName = true): string {
  const resource = resourceForKind(obj.apiVersion, obj.kind);
  if (!resource) throw new Error(`unknown kind ${obj.kind} in ${obj.apiVersion}`);
  const namespace = resource.namespaced ? (obj.metadata.namespace ?? "default") : undefined;
  return resourcePath(
    obj.apiVersion,
    resource.plural,
    namespace,
    withName ? obj.metadata.name : undefined,
    subresource,
  );
}

export class KubeClient {
  readonly connection: Connection;
  private readonly dispatcher: Agent;
  private readonly origin: string;
  private readonly basePath: string;

  static fromKubeconfig(path: string, context?: string): KubeClient {
    return new KubeClient(loadKubeconfig(path, context));
  }

  static inCluster(): KubeClient {
    return new KubeClient(inClusterConnection());
  }

  /** A kubeconfig path if given (or $KUBECONFIG), else the in-cluster service account. */
  static resolve(kubeconfig?: string): KubeClient {
    return new KubeClient(resolveConnection(kubeconfig));
  }

  constructor(connection: Connection) {
    this.connection = connection;
    const url = new URL(connection.server);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.dispatcher = new Agent({
      connect: {
        ca: connection.caPem,
        cert: connection.clientCertPem,
        key: connection.clientKeyPem,
        rejectUnauthorized: !connection.insecureSkipTLSVerify,
      },
      // Watches are long-lived: only the server's timeoutSeconds should end them.
      bodyTimeout: 0,
      headersTimeout: 30_000,
      keepAliveTimeout: 30_000,
    });
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": "klab/0.1.0",
      ...extra,
    };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    return headers;
  }

  /** One request; a non-2xx answer becomes an ApiError carrying the server's Status. */
  async request<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const res = await this.dispatcher.request({
      origin: this.origin,
      path: this.basePath + path,
      method,
      headers: this.headers(body ? { "content-type": options.contentType ?? "application/json" } : {}),
      body,
      signal: options.signal,
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 300) {
      const status =
        parsed && typeof parsed === "object"
          ? (parsed as StatusBody)
          : { message: text || `HTTP ${res.statusCode}` };
      throw new ApiError(res.statusCode, status, method, path);
    }
    return parsed as T;
  }

  list<T = KubeObject>(apiVersion: string, plural: string, options: ListOptions = {}): Promise<List<T>> {
    const { namespace, ...params } = options;
    return this.request("GET", resourcePath(apiVersion, plural, namespace) + query({ ...params }));
  }

  /** The object, or undefined when it does not exist. */
  async get<T = KubeObject>(
    apiVersion: string,
    plural: string,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>("GET", resourcePath(apiVersion, plural, namespace, name));
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  create<T extends KubeObject>(obj: T, options: { dryRun?: boolean } = {}): Promise<T> {
    return this.request(
      "POST",
      objectPath(obj, undefined, false) + query({ dryRun: options.dryRun ? "All" : undefined }),
      {
        body: obj,
      },
    );
  }

  update<T extends KubeObject>(obj: T): Promise<T> {
    return this.request("PUT", objectPath(obj), { body: obj });
  }

  updateStatus<T extends KubeObject>(obj: T): Promise<T> {
    return this.request("PUT", objectPath(obj, "status"), { body: obj });
  }

  patch<T = KubeObject>(
    apiVersion: string,
    plural: string,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
    subresource?: string,
  ): Promise<T> {
    return this.request("PATCH", resourcePath(apiVersion, plural, namespace, name, subresource), {
      body: patch,
      contentType: patchContentTypes[type],
    });
  }

  /** Deletes an object; resolves to undefined if it was already gone. */
  async delete(
    apiVersion: string,
    plural: string,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): Promise<unknown> {
    const body = {
      kind: "DeleteOptions",
      apiVersion: "v1",
      gracePeriodSeconds: options.gracePeriodSeconds,
      propagationPolicy: options.propagationPolicy,
      dryRun: options.dryRun ? ["All"] : undefined,
    };
    try {
      return await this.request("DELETE", resourcePath(apiVersion, plural, namespace, name), { body });
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /**
   * Streams watch events (newline-delimited JSON) to `onEvent` until the server closes the
   * stream, `stop()` is called, or the connection fails.
   */
  watch<T = KubeObject>(
    apiVersion: string,
    plural: string,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
  ): Watch {
    const { namespace, ...params } = options;
    const path = resourcePath(apiVersion, plural, namespace) + query({ ...params, watch: 1 });
    const abort = new AbortController();
    const done = (async () => {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatcher.request({
          origin: this.origin,
          path: this.basePath + path,
          method: "GET",
          headers: this.headers(),
          signal: abort.signal,
        });
      } catch (err) {
        if (abort.signal.aborted) return;
        throw err;
      }
      if (res.statusCode >= 300) {
        const text = await res.body.text();
        let status: StatusBody;
        try {
          status = JSON.parse(text) as StatusBody;
        } catch {
          status = { message: text };
        }
        throw new ApiError(res.statusCode, status, "GET", path);
      }
      let pending = "";
      try {
        for await (const chunk of res.body) {
          pending += (chunk as Buffer).toString("utf8");
          let newline: number;
          while ((newline = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
          }
        }
        const rest = pending.trim();
        if (rest) onEvent(JSON.parse(rest) as WatchEvent<T>);
      } catch (err) {
        if (abort.signal.aborted) return;
        throw err;
      }
    })();
    return { done, stop: () => abort.abort() };
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

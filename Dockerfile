# One image for every klab role; the role comes from the command (see docker-compose.yml).
# Users build on the official Node.js image; CI and offline machines pass a base built without
# a registry: docker/build-base-image.sh && docker build --build-arg BASE_IMAGE=klab-base:bookworm .
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS build
# node-gyp builds the native addons against the image's own Node.js headers, never a download.
ENV npm_config_nodedir=/usr/local npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
RUN command -v g++ >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null \
    || (apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
        && rm -rf /var/lib/apt/lists/*)
WORKDIR /opt/klab
COPY . .
RUN npm ci --no-audit --no-fund && npm run build --workspaces --if-present && npm prune --omit=dev

FROM ${BASE_IMAGE}
# What pods and troubleshooters use on a node: the catalog's toolboxes run these.
RUN missing=""; for t in ip nsenter curl dig ping tcpdump busybox ps iptables; do command -v $t >/dev/null || missing=1; done; \
    [ -z "$missing" ] || (apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates iproute2 util-linux curl dnsutils iputils-ping tcpdump busybox procps iptables \
      && rm -rf /var/lib/apt/lists/*)
COPY --from=build /opt/klab /opt/klab
ENV PATH=/opt/klab/node_modules/.bin:$PATH KLAB_IN_CONTAINER=1
WORKDIR /opt/klab
ENTRYPOINT ["node", "/opt/klab/packages/cli/bin/klab.js"]
CMD ["--help"]

# syntax=docker/dockerfile:1
# Build stage: the full image has python3, make and g++ for better-sqlite3's native addon.
# Node 24 is pinned below 24.19: from 24.19.0 node::ObjectWrap's cleanup hooks abort the process
# when V8 finalizes a better-sqlite3 12 Statement outside a context (nodejs/node#65446), and
# better-sqlite3 13, which avoids ObjectWrap, no longer runs on Node 20.
FROM node:24.18.1-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: only what `multios-patch serve` needs.
FROM node:24.18.1-bookworm-slim
# The only listener today is the unauthenticated local one, so it stays on loopback inside the
# container (reach it with `docker exec` or a sidecar); no unauthenticated port is published.
ENV NODE_ENV=production \
    MPATCH_DATA_DIR=/var/lib/multios-patch
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
RUN mkdir -p /var/lib/multios-patch && chown node:node /var/lib/multios-patch
USER node
VOLUME ["/var/lib/multios-patch"]
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:5487/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli.js", "serve"]

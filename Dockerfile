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
# Two listeners: the unauthenticated local one stays on loopback inside the container (the health
# check and `docker exec` use it; it is never published), and the authenticated one serves other
# hosts on 5491 over HTTPS. Mount the certificate and key at /etc/multios-patch/tls/ (or point
# MPATCH_TLS_CERT/MPATCH_TLS_KEY elsewhere), and give credentials: a tokens file (created with
# `docker exec <c> node dist/cli.js token create --name admin --role admin`, kept in the data
# volume) and/or Keystone (MPATCH_KEYSTONE_URL, _USERNAME, _PASSWORD, _PROJECT); agents enroll
# with MPATCH_ENROLL_SECRET. The service refuses to start without the TLS files.
ENV NODE_ENV=production \
    MPATCH_DATA_DIR=/var/lib/multios-patch \
    MPATCH_AUTH_HOST=0.0.0.0 \
    MPATCH_AUTH_PORT=5491 \
    MPATCH_TLS_CERT=/etc/multios-patch/tls/cert.pem \
    MPATCH_TLS_KEY=/etc/multios-patch/tls/key.pem
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
RUN mkdir -p /var/lib/multios-patch && chown node:node /var/lib/multios-patch
USER node
VOLUME ["/var/lib/multios-patch"]
EXPOSE 5491
# The health check asks the local listener on whatever port MPATCH_PORT configures.
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.MPATCH_PORT||5487)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli.js", "serve"]

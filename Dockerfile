# One image for every Shardwarden process; the command selects it:
#   operator | gateway | worker | migrate | register-commands
# Build:  docker build -t shardwarden:dev .
# Run:    docker run --rm shardwarden:dev operator --help

# --- dependencies: production node_modules only ------------------------------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- build: compile TypeScript ------------------------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY operator ./operator
COPY bot ./bot
COPY discord-simulator ./discord-simulator
COPY testenv ./testenv
COPY benchmarks ./benchmarks
RUN npx tsc -p tsconfig.build.json

# --- runtime ------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
# tini reaps zombies and forwards SIGTERM to node, which drains and hands its work over.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist/bin ./dist/bin
COPY --from=build /app/dist/operator ./dist/operator
COPY --from=build /app/dist/bot ./dist/bot
COPY crds ./crds
# The SQL migrations `migrate` (and the worker at start) apply; read at run time, not compiled.
COPY bot/database/migrations ./bot/database/migrations
# Non-root, matching the securityContext the operator renders (runAsUser 10001).
RUN groupadd --gid 10001 shardwarden && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin shardwarden
USER 10001:10001
# 8080: /healthz, /readyz, /metrics; 8081: the worker's public routes (wallet verification).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/bin/shardwarden.js"]
CMD ["--help"]

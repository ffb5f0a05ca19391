# One image for every Shardwarden process; the command selects it:
#   operator | gateway | worker | migrate | register-commands
# Build:  docker build -t shardwarden:dev .
# Run:    docker run --rm shardwarden:dev operator --help

# The Node base, by exact version (the one in .nvmrc); override with --build-arg NODE_IMAGE=...
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# --- build: compile TypeScript, then collect the files the commands load ------------------
FROM ${NODE_IMAGE} AS build
# tini reaps zombies and forwards SIGTERM to node, which drains and hands its work over. Its
# static binary is copied into the runtime, so apt's state never reaches it.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The sources the commands run (tests, test environment and benchmarks are not the image's).
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY operator ./operator
COPY bot ./bot
RUN npx tsc -p tsconfig.build.json
# Only what the commands import, traced from their entry points (bin/runtime-files.ts): a
# production install would be 561 MB (optional peers such as the Prisma CLI, types, maps).
RUN node dist/bin/runtime-files.js /runtime

# --- runtime ------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
COPY --from=build /usr/bin/tini-static /usr/bin/tini
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /runtime ./
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

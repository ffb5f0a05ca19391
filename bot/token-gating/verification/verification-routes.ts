// Public routes of the wallet link: GET shows the message to sign (JSON, or a small page with a
// browser-wallet button), POST takes { address, signature }.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WorkerServices } from '../../worker/handlers/bot-module.js';
import { ROLE_SYNC_TASK } from '../role-sync/role-sync.js';
import {
  BusyError,
  publicSlots,
  PUBLIC_LIMITS,
  RequestLimiter,
  scriptNonce,
  securityHeaders,
  Semaphore,
} from './public-guard.js';
import { completeVerification, pendingVerification, VerificationError } from './wallet-verification.js';

interface Params {
  communityId: string;
  nonce: string;
}

export function verificationPath(communityId: string, nonce: string): string {
  return `/verify/${communityId}/${nonce}`;
}

function checkParams(p: Params): void {
  if (!/^\d{1,20}$/.test(p.communityId))
    throw new VerificationError(400, 'The server id in the link is malformed.');
  if (!/^[0-9a-f]{32}$/.test(p.nonce))
    throw new VerificationError(400, 'The nonce in the link is malformed.');
}

const page = (
  message: string,
  nonce: string,
) => `<!doctype html><meta charset="utf-8"><title>Link your wallet</title>
<h1>Link your wallet</h1><p>Sign this message with your wallet:</p><pre id="m"></pre>
<button id="b">Sign with browser wallet</button><p id="r"></p>
<script nonce="${nonce}">const m=${JSON.stringify(message)};document.getElementById('m').textContent=m;
document.getElementById('b').onclick=async()=>{const r=document.getElementById('r');try{
const [a]=await ethereum.request({method:'eth_requestAccounts'});
const s=await ethereum.request({method:'personal_sign',params:[m,a]});
const res=await fetch(location.pathname,{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({address:a,signature:s})});
r.textContent=(await res.json()).message}catch(e){r.textContent=String(e.message||e)}}</script>`;

export async function verificationRoutes(app: FastifyInstance, services: WorkerServices): Promise<void> {
  // Its own plugin scope, so the error handler applies to these routes only.
  await app.register(async (scoped) => routes(scoped, services));
}

function routes(app: FastifyInstance, services: WorkerServices): void {
  const db = () => {
    if (!services.db) throw new VerificationError(404, 'Wallet verification is not enabled on this bot.');
    return services.db;
  };
  const limiter = new RequestLimiter(services.redis, services.key);
  const slots = services.db ? publicSlots(services.db.poolMax) : 1;
  const transactions = new Semaphore(slots, slots * 4);
  /** The request limits, then a slot of the public share of the pool, then the work. */
  const guarded = async <T>(req: FastifyRequest<{ Params: Params }>, work: () => Promise<T>): Promise<T> => {
    checkParams(req.params);
    const waits = await Promise.all([
      limiter.take('client', req.ip, PUBLIC_LIMITS.perClient),
      limiter.take('nonce', req.params.nonce, PUBLIC_LIMITS.perNonce),
    ]);
    const wait = Math.max(...waits);
    if (wait > 0) throw new TooManyRequests(wait);
    return transactions.run(work);
  };
  app.decorateReply('scriptNonce', '');
  app.addHook('onRequest', async (_req, reply) => {
    reply.scriptNonce = scriptNonce();
    reply.headers(securityHeaders(reply.scriptNonce));
  });
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof VerificationError) return reply.code(err.status).send({ error: err.message });
    if (err instanceof TooManyRequests)
      return reply
        .code(429)
        .header('retry-after', String(Math.ceil(err.waitMs / 1000)))
        .send({ error: 'Too many requests; please wait a minute and try again.' });
    if (err instanceof BusyError)
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'Busy; please try again in a moment.' });
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({ error: (err as Error).message });
    services.logger.error({ err: (err as Error).message }, 'verification route failed');
    return reply.code(500).send({ error: 'Something went wrong; please try again.' });
  });
  app.get<{ Params: Params }>('/verify/:communityId/:nonce', async (req, reply) => {
    const row = await guarded(req, () => pendingVerification(db(), req.params.communityId, req.params.nonce));
    if ((req.headers.accept ?? '').includes('application/json'))
      return { message: row.message, expiresAt: row.expiresAt.toISOString() };
    return reply.type('text/html').send(page(row.message, reply.scriptNonce));
  });
  app.post<{ Params: Params; Body: { address?: unknown; signature?: unknown } | undefined }>(
    '/verify/:communityId/:nonce',
    async (req) => {
      const body = req.body ?? {};
      const linked = await guarded(req, () =>
        completeVerification(db(), {
          communityId: req.params.communityId,
          nonce: req.params.nonce,
          address: body.address,
          signature: body.signature,
        }),
      );
      // The member's roles follow their new wallet without waiting for the periodic sync.
      // The link is committed: a failed enqueue must not turn it into an error (the periodic sync
      // catches up).
      await services.tasks
        .enqueue(ROLE_SYNC_TASK, { communityId: req.params.communityId, userIds: [linked.userId] })
        .catch((err: unknown) =>
          services.logger.warn(
            { err: (err as Error).message },
            'could not queue the role sync after a wallet link',
          ),
        );
      services.logger.info({ community: req.params.communityId, user: linked.userId }, 'wallet linked');
      return {
        linked: linked.address,
        message: `Wallet ${linked.address} linked. Your roles will update shortly.`,
      };
    },
  );
}

class TooManyRequests extends Error {
  constructor(readonly waitMs: number) {
    super('too many requests');
  }
}

declare module 'fastify' {
  interface FastifyReply {
    /** The CSP nonce of this response's inline script. */
    scriptNonce: string;
  }
}

// Public routes of the wallet link: GET shows the message to sign (JSON, or a small page with a
// browser-wallet button), POST takes { address, signature }.
import type { FastifyInstance } from 'fastify';
import type { WorkerServices } from '../../worker/handlers/bot-module.js';
import { ROLE_SYNC_TASK } from '../role-sync/role-sync.js';
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

const page = (message: string) => `<!doctype html><meta charset="utf-8"><title>Link your wallet</title>
<h1>Link your wallet</h1><p>Sign this message with your wallet:</p><pre id="m"></pre>
<button id="b">Sign with browser wallet</button><p id="r"></p>
<script>const m=${JSON.stringify(message)};document.getElementById('m').textContent=m;
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
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof VerificationError) return reply.code(err.status).send({ error: err.message });
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({ error: (err as Error).message });
    services.logger.error({ err: (err as Error).message }, 'verification route failed');
    return reply.code(500).send({ error: 'Something went wrong; please try again.' });
  });
  app.get<{ Params: Params }>('/verify/:communityId/:nonce', async (req, reply) => {
    checkParams(req.params);
    const row = await pendingVerification(db(), req.params.communityId, req.params.nonce);
    if ((req.headers.accept ?? '').includes('application/json'))
      return { message: row.message, expiresAt: row.expiresAt.toISOString() };
    return reply.type('text/html').send(page(row.message));
  });
  app.post<{ Params: Params; Body: { address?: unknown; signature?: unknown } | undefined }>(
    '/verify/:communityId/:nonce',
    async (req) => {
      checkParams(req.params);
      const body = req.body ?? {};
      const linked = await completeVerification(db(), {
        communityId: req.params.communityId,
        nonce: req.params.nonce,
        address: body.address,
        signature: body.signature,
      });
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

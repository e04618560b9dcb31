import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorizeRead } from '../auth/request-auth.js';
import { ApiError, recordNotFound } from './api-error.js';
import { isTerminal, type JobKind } from '../core/job.js';
import { clientKey } from '../limits/rate-limit.js';
import { compress, type FinishedLog } from '../reading/finished-log.js';
import { strippedView } from '../text/stripped-view.js';
import type { ApiContext } from './context.js';
import { finishedResponse } from './finished-response.js';
import { logEtag, logHeaders, type LogRequest } from './log-headers.js';
import { pipeLog } from './log-stream.js';
import { booleanParam, booleanQuery, JOB_ID_PARAMS, jobIdParam, queryOf, sectionParam, sectionQuery } from './params.js';
import { etagMatches, parseRange, pickEncoding } from './range.js';
import { jobResource, LOG_PATHS } from './routes.js';
import { content, errors } from './schemas.js';

type Query = Record<string, string | string[] | undefined>;

/** Sends the head ourselves (with the headers hooks set on the reply) and leaves the body to the caller. */
function takeOver(reply: FastifyReply, status: number, headers: OutgoingHttpHeaders) {
  reply.hijack();
  return reply.raw.writeHead(status, { ...(reply.getHeaders() as OutgoingHttpHeaders), ...headers });
}

/** What a log GET asks for; bad parameters are 400 (an unknown id is 404 first, as Apify answers). */
export function parseLogRequest(kind: JobKind | 'any', req: FastifyRequest, jobId?: string): LogRequest & { stream: boolean } {
  const id = jobId ?? jobIdParam(req.params, kind);
  const query = req.query as Query;
  const stream = booleanParam(query, 'stream');
  const download = booleanParam(query, 'download');
  const view = booleanParam(query, 'raw') ? 'raw' : 'text';
  return { id, stream, download, view, encoding: pickEncoding(req.headers['accept-encoding']) };
}

/** A finished log from its final bytes, in one write. */
async function sendFinished(log: FinishedLog, r: LogRequest, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const planned = await finishedResponse(log, r, req.headers['if-none-match'], req.headers.range);
  takeOver(reply, planned.status, planned.headers).end(planned.body);
}

/**
 * GET of a log, shared by /v2/actor-builds/:id/log, /v2/actor-runs/:id/log and /v2/logs/:id. A finished
 * log is answered from its final bytes (cached); otherwise headers go out at once (a quiet build must not
 * time a client out), then stored bytes, then (with `stream`) live appends. `jobId` is given when the
 * path names no id (an actor's last run).
 */
/** `?section=<name>`: one section's text alone (a snapshot, also while the job runs). */
async function serveSection(ctx: ApiContext, kind: JobKind | 'any', r: LogRequest, name: string, req: FastifyRequest, reply: FastifyReply) {
  const job = await ctx.service.get(r.id, kind);
  authorizeRead(req, job, ctx.config.privateReads);
  const found = await ctx.service.sectionBytes(job, name);
  if (!found) throw recordNotFound(`The log has no section named "${name}".`);
  const view = r.view === 'raw' ? found.data : strippedView(found.data);
  const body = r.encoding ? await compress[r.encoding](view) : view;
  const headers = logHeaders(r);
  headers['X-Log-Offset'] = found.section.start;
  headers['Content-Length'] = body.length;
  takeOver(reply, 200, headers).end(req.method === 'HEAD' ? undefined : body);
}

export async function serveLog(ctx: ApiContext, kind: JobKind | 'any', req: FastifyRequest, reply: FastifyReply, jobId?: string) {
  const { service, config } = ctx;
  const r = parseLogRequest(kind, req, jobId);
  const section = sectionParam(req.query as Query);
  if (section !== undefined) return serveSection(ctx, kind, r, section, req, reply);
  const cached = service.reads.cached(r.id);
  if (cached && (kind === 'any' || cached.kind === kind)) {
    authorizeRead(req, cached, config.privateReads);
    return sendFinished(cached, r, req, reply);
  }
  const job = await service.get(r.id, kind);
  authorizeRead(req, job, config.privateReads);
  const terminal = isTerminal(job.status);
  const finished = terminal ? await service.reads.finished(job) : null;
  if (finished) return sendFinished(finished, r, req, reply);

  const info = (await service.reads.info(r.id))!;
  const follow = r.stream && !terminal;
  const headers = logHeaders(r);
  if (terminal) {
    const etag = logEtag(r, info.start, info.length);
    headers.ETag = etag;
    if (etagMatches(req.headers['if-none-match'], etag)) {
      return void takeOver(reply, 304, { ETag: etag, Vary: 'Accept-Encoding' }).end();
    }
  }

  let from = info.start;
  let until: number | undefined;
  let status = 200;
  const range = parseRange(req.headers.range);
  if (range) {
    from = 'suffix' in range ? Math.max(info.length - range.suffix, info.start) : Math.max(range.from, info.start);
    until = 'to' in range ? range.to : undefined;
  }
  // The end of what this response covers among the bytes stored now (all of it, without follow).
  const end = Math.min(until ?? info.length, info.length);
  if (range) {
    if (!follow && from >= end) {
      throw new ApiError(416, 'range-not-satisfiable', `The log has ${info.length} bytes; range "${req.headers.range}" is outside them.`, {
        'Content-Range': `bytes */${info.length}`,
      });
    }
    status = 206;
    // While following, the complete length is not known yet (`*`); the range names the bytes stored so far,
    // and is left out when there are none yet (HTTP has no form for an empty range): X-Log-Offset still says where the body starts.
    if (!follow) headers['Content-Range'] = `bytes ${from}-${end - 1}/${info.length}`;
    else if (from < end) headers['Content-Range'] = `bytes ${from}-${end - 1}/*`;
  }
  headers['X-Log-Offset'] = from;
  if (!follow && r.view === 'raw' && !r.encoding) headers['Content-Length'] = end - from;

  const releaseSlot = follow ? ctx.streamSlots.acquire(clientKey(req)) : () => undefined;
  const res = takeOver(reply, status, headers);
  if (follow) res.flushHeaders();
  if (req.method === 'HEAD') {
    // The head a GET would get (429 over the stream limit too), and the slot back at once.
    releaseSlot();
    return void res.end();
  }

  const follower = follow ? service.reads.follow(r.id, from, until, r.view, !range) : null;
  pipeLog(ctx, res, { r, follower, from, until: end, notice: range ? null : service.reads.notice(info.start), releaseSlot, warn: (err) => req.log.warn({ err }, 'log response failed') });
}

export const LOG_QUERY = queryOf({
  stream: booleanQuery('on a running job: keep the response open and send each append as it lands, until the job ends'),
  download: booleanQuery('Content-Disposition: attachment, as <id>.log'),
  raw: booleanQuery('the bytes as sent; without it ANSI escape sequences and control characters (but newline and tab) are removed, section markers become headers, and a truncated log starts with a notice'),
  section: sectionQuery('only this section of the log (a GitLab section name or a GitHub group title; see GET /v2/logs/{id}/sections)'),
});

const LOG_TEXT = {
  type: 'string',
  description: 'X-Log-Offset: the absolute offset of the first byte sent. Finished logs carry an ETag; gzip or br when accepted.',
};

export const LOG_RESPONSES = {
  200: content('the log (text/plain; charset=utf-8)', 'text/plain', LOG_TEXT),
  206: content('the requested range of the log', 'text/plain', LOG_TEXT),
  304: { description: 'If-None-Match matched the ETag of a finished log', type: 'null' },
  ...errors(400, 401, 403, 404, 416, 429),
};

export function logRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const [kind, path, what] of LOG_PATHS) {
    jobResource(app, kind, path, {
      GET: {
        schema: {
          summary: `Get ${what}`,
          description: 'Range: bytes=N- resumes at absolute offset N (206), also with stream.',
          tags: ['Apify'],
          params: JOB_ID_PARAMS,
          querystring: LOG_QUERY,
          response: LOG_RESPONSES,
        },
        handler: (req: FastifyRequest, reply: FastifyReply) => serveLog(ctx, kind, req, reply),
      },
    });
  }
}

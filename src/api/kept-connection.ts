import type { Socket } from 'node:net';
import { BoundedMap } from '../core/bounded-map.js';
import { destroySocket, ignore, type TakenConnections } from './socket-follow.js';

/** A request off a kept connection, as far as the answer depends on it. */
export interface SimpleGet {
  url: string;
  acceptEncoding: string | undefined;
}

/**
 * The answer to a request: the head's header fields (name, value, name, value...) and the body, or null
 * when Node's HTTP server is to answer it.
 */
export type KeptAnswer = (request: SimpleGet, socket: Socket) => { fields: readonly (string | number)[]; body: Buffer } | null;

const HEAD_END = Buffer.from('\r\n\r\n');
/** Node's default --max-http-header-size: a longer head goes to Node, which refuses it. */
const MAX_HEAD = 16 * 1024;
const REQUEST_LINE = /^GET (\/[!-~]*) HTTP\/1\.1$/;
/** A header field as RFC 9110 spells it, no obs-fold, no obs-text, no space before the colon. */
const FIELD = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[\t ]*([\t -~]*?)[\t ]*$/;
/** Fields whose presence changes the answer or the framing: such a request is Node's to answer. */
const DECLINED = new Set(['authorization', 'range', 'if-range', 'if-none-match', 'content-length', 'transfer-encoding', 'expect', 'upgrade', 'te', 'trailer']);

/**
 * A GET that a kept connection may answer itself: HTTP/1.1, one Host, at most one Accept-Encoding, no
 * field in DECLINED, `Connection` absent or `keep-alive`, every line well formed; null for anything else.
 * Deliberately narrower than HTTP: whatever this does not recognise, Node's parser reads, so the two can
 * never read one request differently.
 */
export function parseSimpleGet(head: string): SimpleGet | null {
  const lines = head.split('\r\n');
  const start = REQUEST_LINE.exec(lines[0]!);
  if (!start) return null;
  let hosts = 0;
  let acceptEncoding: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD.exec(lines[i]!);
    if (!field) return null;
    const name = field[1]!.toLowerCase();
    if (name === 'host') hosts++;
    else if (name === 'accept-encoding') {
      if (acceptEncoding !== undefined) return null;
      acceptEncoding = field[2]!;
    } else if (name === 'connection') {
      if (field[2]!.toLowerCase() !== 'keep-alive') return null;
    } else if (DECLINED.has(name)) return null;
  }
  return hosts === 1 ? { url: start[1]!, acceptEncoding } : null;
}

/** Node's own `Date` value: the current second's. */
function httpDate(second: number): string {
  return new Date(second * 1000).toUTCString();
}

/** Responses whole (head and body in one Buffer) are kept for bodies up to this size, for the current second. */
const WHOLE_MAX_BODY = 64 * 1024;
/** How many such responses are kept (by answer): the most recently made ones, 16 MiB at most. */
const WHOLE_MAX_COUNT = 256;

/**
 * The responses of the current second, by answer (the fields array is made once per log and variant):
 * only `Date` changes between two answers to the same request, so each is made once a second and then
 * written with one write, as nginx writes a static file.
 */
class ResponseCache {
  readonly #made = new BoundedMap<readonly (string | number)[], { second: number; head: Buffer; whole: Buffer | null }>(WHOLE_MAX_COUNT);

  constructor(private readonly keepAliveSecs: number) {}

  /** The whole response, or its head and body for a large body. */
  response(fields: readonly (string | number)[], body: Buffer): Buffer | [Buffer, Buffer] {
    const second = Math.floor(Date.now() / 1000);
    let made = this.#made.get(fields);
    if (made?.second !== second) {
      let text = 'HTTP/1.1 200 OK\r\n';
      for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
      text += `Date: ${httpDate(second)}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=${this.keepAliveSecs}\r\n\r\n`;
      const head = Buffer.from(text, 'latin1');
      made = { second, head, whole: body.length <= WHOLE_MAX_BODY ? Buffer.concat([head, body]) : null };
      this.#made.set(fields, made);
    }
    return made.whole ?? [made.head, body];
  }
}

/**
 * Serves a keep-alive connection taken from Node's HTTP server (socket-follow.ts, `takeWhenFinished`)
 * without it: each whole request head that `parseSimpleGet` accepts and `answer` answers gets its
 * response written at once, in one write; at the first request that either declines (or that has not
 * arrived whole), the connection goes back to Node's server with that request unread, for good.
 *
 * Why by hand: polling a finished log is the API's most frequent request, and Node's HTTP server costs
 * more per request than the answer itself (wrk -t1 -c50 on one 4 KB body, this machine: a bare
 * `node:http` server 32-35k req/s, nginx 44.5k, a bare `net` server 55-60k). A client that polls pays
 * for Node's HTTP server on its first two requests of a connection, not on every one. Timeouts are
 * Node's: an idle connection is closed after the server's keep-alive timeout (plus the second Node
 * adds); a request that arrives in pieces is Node's to wait for, under its headers timeout.
 */
function serveKept(taken: TakenConnections, socket: Socket, answer: KeptAnswer, responses: ResponseCache): void {
  const keepAliveMs = taken.server.keepAliveTimeout;
  let unread: Buffer | null = null;
  const serve = () => {
    while (unread) {
      // A client that does not read its answers: stop reading its requests until it does.
      if (socket.writableNeedDrain) return void socket.pause();
      const end = unread.indexOf(HEAD_END);
      const request = end < 0 || end > MAX_HEAD ? null : parseSimpleGet(unread.toString('latin1', 0, end));
      const answered = request && answer(request, socket);
      if (!answered) {
        const rest = unread;
        unread = null;
        return taken.giveBack(socket, [rest]);
      }
      const response = responses.response(answered.fields, answered.body);
      if (Buffer.isBuffer(response)) socket.write(response);
      else {
        socket.cork();
        socket.write(response[0]);
        socket.write(response[1]);
        socket.uncork();
      }
      unread = end + 4 < unread.length ? unread.subarray(end + 4) : null;
    }
  };
  taken.keep(socket);
  socket.on('data', (data: Buffer) => {
    unread = unread ? Buffer.concat([unread, data]) : data;
    serve();
  });
  socket.on('drain', () => {
    socket.resume();
    serve();
  });
  // The client is done sending: what it was sent still goes out, then the connection closes.
  socket.on('end', () => socket.end());
  socket.on('error', ignore);
  socket.on('timeout', destroySocket);
  socket.setTimeout(keepAliveMs + 1000);
  socket.on('close', () => taken.delete(socket));
}

/** What serves each connection taken for `answer` (all of them share the responses made this second). */
export function keptConnections(taken: TakenConnections, answer: KeptAnswer): (socket: Socket) => void {
  const responses = new ResponseCache(Math.floor(taken.server.keepAliveTimeout / 1000));
  return (socket) => serveKept(taken, socket, answer, responses);
}

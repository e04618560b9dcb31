import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EventEmitter } from 'node:events';
import type { LogFollower } from '../live/follower.js';
import type { ApiContext } from './context.js';

/** Node's per-connection HTTP parser as `socket.parser` holds it: not a public API, hence the checks. */
interface HttpParser {
  unconsume(): void;
  remove(): void;
  close(): void;
}

function isParser(p: unknown): p is HttpParser {
  const o = p as Partial<HttpParser> | null;
  return !!o && typeof o.unconsume === 'function' && typeof o.remove === 'function' && typeof o.close === 'function';
}

function freeParser(parser: HttpParser): void {
  parser.close();
}

const REQUESTS = Symbol('requests');
type CountedSocket = Socket & { [REQUESTS]?: number };

/**
 * Counts the requests that arrived on a connection; returns this one's number. Node's HTTP server parses
 * a pipelined request as soon as it arrives and queues its response behind the one in flight, so a
 * connection is only taken while the request being answered is still its last one.
 */
export function countRequest(socket: Socket): number {
  const counted = socket as CountedSocket;
  return (counted[REQUESTS] = (counted[REQUESTS] ?? 0) + 1);
}

export interface TakenSocket {
  socket: Socket;
  /** The head kept the connection open (the client did not ask to close it, nor spoke HTTP/1.0). */
  keepAlive: boolean;
}

/**
 * Takes the connection of a follow whose head was written away from Node's HTTP server, as the server
 * itself hands a connection over on `Upgrade` (the parser stops reading and is freed, the server's
 * listeners on the socket go): the request, the response and the parser are let go. That is 4.6 KB per
 * connection (measured: 10.5 KB RSS per open streaming `node:http` response, 5.8 KB per taken socket,
 * 4.2 KB per bare `net` socket), which each idle follower would otherwise hold for as long as its build
 * runs. Returns null, having changed nothing, where the reader has gone, another request came in behind
 * this one (`request` is its number from `countRequest`), the body is not chunked (an HTTP/1.0 client)
 * or Node does not look as expected.
 */
export function takeSocket(res: ServerResponse, request: number): TakenSocket | null {
  const socket = res.socket as ParsedSocket | null;
  if (!socket || socket.destroyed || socket[REQUESTS] !== request || !res.chunkedEncoding || !isParser(socket.parser)) return null;
  const keepAlive = res.shouldKeepAlive;
  res.detachSocket(socket);
  releaseFromParser(socket, socket.parser);
  return { socket, keepAlive };
}

type ParsedSocket = CountedSocket & { parser?: unknown };

/** Lets Node's HTTP server go of a connection: its listeners go, the parser stops reading and is freed. */
function releaseFromParser(socket: ParsedSocket, parser: HttpParser): void {
  socket.removeAllListeners();
  socket.parser = null;
  // From now on the socket reads for itself: nothing more reaches the parser, no request is queued behind this one.
  parser.unconsume();
  parser.remove();
  // Freed later, not while it may still be on the stack.
  setImmediate(freeParser, parser);
}

const BEGUN = Symbol('messageBegun');

/** The parser's message-begin callback while a connection may be kept: a request started arriving. */
function markBegun(this: Record<symbol, unknown>): void {
  this[BEGUN] = true;
}

/**
 * Takes a keep-alive connection from Node's HTTP server once the response to `request` (its number from
 * `countRequest`) is finished, as `takeSocket` does for a follower, and calls `keep` with it. Nothing is
 * taken where another request started arriving meanwhile (a pipelining client: its first bytes are in the
 * parser already), the request had a body, the connection closes after this response, or Node does not
 * look as expected.
 */
export function takeWhenFinished(req: IncomingMessage, res: ServerResponse, request: number, keep: (socket: Socket) => void): void {
  const socket = res.socket as ParsedSocket | null;
  const parser = socket?.parser;
  const messageBegin = (parser as { constructor?: { kOnMessageBegin?: unknown } } | undefined)?.constructor?.kOnMessageBegin;
  if (!socket || !isParser(parser) || typeof messageBegin !== 'number' || !res.shouldKeepAlive) return;
  if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) return;
  const slots = parser as unknown as Record<number | symbol, unknown>;
  slots[messageBegin] = markBegun;
  res.once('finish', () => {
    const begun = slots[BEGUN] === true;
    slots[messageBegin] = null;
    delete slots[BEGUN];
    if (begun || socket.destroyed || socket.parser !== parser || socket[REQUESTS] !== request) return;
    releaseFromParser(socket, parser);
    keep(socket);
  });
}

/**
 * The connections taken for followers. When a follow ends, its connection goes back to the HTTP server
 * as a new one (the documented way to inject a connection: its 'connection' event), so a keep-alive
 * client can send its next request on it; at the end of a shutdown's grace whatever is still open is cut.
 */
export class TakenConnections {
  readonly #open = new Set<Socket>();
  /** Those kept between requests (api/kept-connection.ts), which a shutdown closes at once, as Node closes its idle ones. */
  readonly #kept = new Set<Socket>();

  constructor(readonly server: EventEmitter & { keepAliveTimeout: number }) {}

  add(socket: Socket): void {
    this.#open.add(socket);
  }

  keep(socket: Socket): void {
    this.#open.add(socket);
    this.#kept.add(socket);
  }

  /** The socket closed. */
  delete(socket: Socket): void {
    this.#open.delete(socket);
    this.#kept.delete(socket);
  }

  /** Back to the HTTP server, with what the client sent meanwhile (its next request) still to be read. */
  giveBack(socket: Socket, unread: Buffer[]): void {
    this.delete(socket);
    socket.removeAllListeners();
    socket.setTimeout(0);
    socket.pause();
    if (unread.length) socket.unshift(Buffer.concat(unread));
    this.server.emit('connection', socket);
  }

  /** A shutdown begins: kept connections read no more requests and close once what was written to them is out. */
  closeKept(): void {
    for (const socket of this.#kept) {
      socket.removeAllListeners('data');
      socket.pause();
      socket.destroySoon();
    }
  }

  cutAll(): void {
    for (const socket of this.#open) socket.destroy();
  }
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** What a client may send while its follow is open (a pipelined request) before it is cut off. */
const MAX_UNREAD = 64 * 1024;

/** Chunks framed for a chunked body, by chunk: the followers of a log share one Buffer per append. */
const frames = new WeakMap<Buffer, Buffer>();

/**
 * `chunk` as one chunk of a chunked body (size line, bytes, CRLF) in one Buffer, made once for all the
 * followers that are sent the same chunk. One plain write per follower: measured against a corked write
 * of the three parts (a writev), 11-14 against 18-22 us per write of 20 sockets every 2 ms.
 */
function framedChunk(chunk: Buffer): Buffer {
  let frame = frames.get(chunk);
  if (!frame) {
    const size = `${chunk.length.toString(16)}\r\n`;
    frame = Buffer.allocUnsafe(size.length + chunk.length + 2);
    frame.write(size, 0, 'latin1');
    chunk.copy(frame, size.length);
    frame.write('\r\n', size.length + chunk.length, 'latin1');
    frames.set(chunk, frame);
  }
  return frame;
}

/** Listeners shared by every taken socket, rather than closures of its own. */
export function destroySocket(this: Socket): void {
  this.destroy();
}
export function ignore(): void {}

/**
 * A follower written to a taken socket as the chunked body its head announced, with backpressure. After
 * the last chunk the connection goes back to the HTTP server (keep-alive), or is closed when the head
 * said so or the follow was stopped by a shutdown; it is cut short when the follower fails (as a response
 * is destroyed). `onDone` is told once, when the follow is over.
 */
export function pipeFollowerToSocket(ctx: ApiContext, taken: TakenSocket, follower: LogFollower, warn: (err: Error) => void, onDone: () => void): void {
  const { socket, keepAlive } = taken;
  ctx.followers.add(follower);
  ctx.taken.add(socket);
  const unread: Buffer[] = [];
  let unreadBytes = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    ctx.followers.delete(follower);
    onDone();
  };
  follower.on('data', (chunk: Buffer) => {
    if (!socket.write(framedChunk(chunk))) follower.pause();
  });
  socket.on('drain', () => follower.resume());
  // `on`, not `once`, for events that come once anyway: a `once` wrapper is two more objects per follower.
  follower.on('end', () => {
    if (keepAlive && !follower.stopped) {
      socket.write(LAST_CHUNK);
      finish();
      ctx.taken.giveBack(socket, unread);
    } else {
      // A shutdown's stopped stream: the connection goes too, so that the server can finish closing.
      socket.end(LAST_CHUNK);
    }
  });
  follower.on('error', (err) => {
    socket.destroy();
    warn(err);
  });
  follower.on('close', () => {
    if (!follower.readableEnded) socket.destroy();
  });
  // Whatever the client sends meanwhile is its next request, read once the connection is given back.
  socket.on('data', (data: Buffer) => {
    unreadBytes += data.length;
    if (unreadBytes > MAX_UNREAD) return void socket.destroy();
    unread.push(data);
  });
  // The reader went away (a half-closed connection gets no more of the log either).
  socket.on('end', destroySocket);
  // A reset is followed by 'close', which cleans up.
  socket.on('error', ignore);
  socket.on('close', () => {
    ctx.taken.delete(socket);
    follower.destroy();
    finish();
  });
}

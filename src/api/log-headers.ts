import type { OutgoingHttpHeaders } from 'node:http';
import type { Encoding, LogView } from '../reading/finished-log.js';

/** What a log GET asked for, as parsed from its query and headers. */
export interface LogRequest {
  id: string;
  view: LogView;
  download: boolean;
  encoding: Encoding | null;
}

/** The headers every 200/206 log response carries, in the order they always went out. */
export function logHeaders(r: LogRequest): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    Vary: 'Accept-Encoding',
    'Accept-Ranges': 'bytes',
  };
  if (r.download) headers['Content-Disposition'] = `attachment; filename="${r.id}.log"`;
  if (r.encoding) headers['Content-Encoding'] = r.encoding;
  return headers;
}

/** The ETag of a finished log's view in an encoding: it changes with the window, the view and the coding. */
export function logEtag(r: LogRequest, start: number, length: number): string {
  return `"${r.id}-${start}-${length}-${r.view}${r.encoding ? `-${r.encoding}` : ''}"`;
}

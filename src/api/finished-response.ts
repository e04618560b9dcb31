import type { OutgoingHttpHeaders } from 'node:http';
import { ApiError } from './api-error.js';
import { compress, type FinishedLog } from '../reading/finished-log.js';
import { strippedView } from '../text/stripped-view.js';
import { logEtag, logHeaders, type LogRequest } from './log-headers.js';
import { etagMatches, parseRange } from './range.js';

export interface PlannedResponse {
  status: number;
  headers: OutgoingHttpHeaders;
  /** Absent for 304. */
  body?: Buffer;
}

/** 304 for a matching ETag, else the whole view with the body given. */
function whole(log: FinishedLog, r: LogRequest, ifNoneMatch: string | undefined, body: () => Buffer | undefined): PlannedResponse | null {
  const etag = logEtag(r, log.start, log.length);
  if (etagMatches(ifNoneMatch, etag)) return { status: 304, headers: { ETag: etag, Vary: 'Accept-Encoding' } };
  const data = body();
  if (!data) return null;
  const headers = logHeaders(r);
  headers.ETag = etag;
  headers['X-Log-Offset'] = log.start;
  headers['Content-Length'] = data.length;
  return { status: 200, headers, body: data };
}

/** The answer to a GET of a whole finished log if it can be given without waiting (null: a compressed form is not ready). */
export function finishedResponseNow(log: FinishedLog, r: LogRequest, ifNoneMatch: string | undefined): PlannedResponse | null {
  return whole(log, r, ifNoneMatch, () => (r.encoding ? log.compressedNow(r.view, r.encoding) : log.view(r.view)));
}

/**
 * The whole answer to a GET of a finished log, from its final bytes: 304 for a matching ETag, 206 for a
 * Range (absolute offsets, cut from the raw bytes and then stripped, as a live read from that offset
 * would be), 416 outside the log, else 200 with the view (compressed once per log and coding).
 */
export async function finishedResponse(log: FinishedLog, r: LogRequest, ifNoneMatch: string | undefined, rangeHeader: string | undefined): Promise<PlannedResponse> {
  const range = parseRange(rangeHeader);
  if (!range) {
    const now = finishedResponseNow(log, r, ifNoneMatch);
    if (now) return now;
    const body = await log.compressed(r.view, r.encoding!);
    return whole(log, r, undefined, () => body)!;
  }
  const etag = logEtag(r, log.start, log.length);
  if (etagMatches(ifNoneMatch, etag)) return { status: 304, headers: { ETag: etag, Vary: 'Accept-Encoding' } };
  const headers = logHeaders(r);
  headers.ETag = etag;
  const from = 'suffix' in range ? Math.max(log.length - range.suffix, log.start) : Math.max(range.from, log.start);
  const end = Math.min(('to' in range && range.to) || log.length, log.length);
  if (from >= end) {
    throw new ApiError(416, 'range-not-satisfiable', `The log has ${log.length} bytes; range "${rangeHeader}" is outside them.`, {
      'Content-Range': `bytes */${log.length}`,
    });
  }
  headers['Content-Range'] = `bytes ${from}-${end - 1}/${log.length}`;
  headers['X-Log-Offset'] = from;
  const bytes = log.raw.subarray(from - log.start, end - log.start);
  const view = r.view === 'raw' ? bytes : strippedView(bytes);
  const body = r.encoding ? await compress[r.encoding](view) : view;
  headers['Content-Length'] = body.length;
  return { status: 206, headers, body };
}

// @ts-check
/**
 * The pages' (viewer and dashboard) way to the /v2 API: the token in the Authorization header (never in
 * an address), never an answer from the browser's cache, and the message of Apify's error envelope.
 */
import { authHeaders } from './token.js';

/** Statuses after which a job changes no more. */
export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED']);

/**
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, signal?: AbortSignal }} [options]
 */
export function apiFetch(url, { method = 'GET', headers = {}, signal } = {}) {
  return fetch(url, { method, headers: authHeaders(headers), cache: 'no-store', signal });
}

/** The message of an error answer (`{"error":{"message"}}`), else its status text. @param {Response} res */
export async function errorMessage(res) {
  try {
    return String((await res.json())?.error?.message ?? res.statusText);
  } catch {
    return res.statusText;
  }
}

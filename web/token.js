// @ts-check
/**
 * The API token of the pages (dashboard and viewer): kept only in this browser, in sessionStorage, or in
 * localStorage when the reader asks to be remembered, and sent only in the Authorization header, never
 * in a URL. `/#token=…` in the address is taken into storage and removed from the address bar at once
 * (a fragment is never sent to the server; removing it keeps it out of the history and of screenshots).
 */

const TOKEN_KEY = 'buildlog.token';

/** @param {Storage} s */
function readStorage(s) {
  try {
    return s.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

let token = readStorage(sessionStorage) ?? readStorage(localStorage) ?? '';

/** The current token ('' for none). */
export function getToken() {
  return token;
}

/** Stores a token for this tab, or for this browser with `remember`; '' forgets it. @param {string} value @param {boolean} remember */
export function saveToken(value, remember) {
  token = value;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    if (value) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, value);
  } catch {
    // Storage may be disabled: the token then lives only as long as this page.
  }
}

/** Takes `#token=…` out of the address into storage (remembered: a link made to open the pages). */
export function takeTokenFromAddress() {
  const m = /^#token=([^&]*)$/.exec(location.hash);
  if (!m) return;
  const value = decodeURIComponent(m[1] ?? '').trim();
  history.replaceState(null, '', location.pathname + location.search);
  if (value) saveToken(value, true);
}

/** Headers for an API request, with the token if there is one. @param {Record<string, string>} [extra] */
export function authHeaders(extra = {}) {
  const h = new Headers(extra);
  if (token) h.set('Authorization', `Bearer ${token}`);
  return h;
}

// @ts-check
/** What the pages (viewer and dashboard) share about their HTML. */

/** An element the page's HTML has. @param {string} id */
export function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found;
}

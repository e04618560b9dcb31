// @ts-check
/**
 * The pages' token prompt (`#auth` with `#token-form`) and their "Forget token" button: a page shows the
 * prompt when the API answers 401 or 403; a token entered is kept (token.js) and the page starts again.
 */
import { element } from './page.js';
import { getToken, saveToken } from './token.js';

export class TokenPrompt {
  /**
   * @param {{ entered: () => void, forgotten: () => void }} on what the page does once a token is
   *   entered, and once the reader forgot it
   */
  constructor(on) {
    this.auth = element('auth');
    this.text = element('auth-text');
    this.input = /** @type {HTMLInputElement} */ (element('token-input'));
    this.remember = /** @type {HTMLInputElement} */ (element('token-remember'));
    this.forget = element('forget-token');
    element('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = this.input.value.trim();
      if (!value) return;
      saveToken(value, this.remember.checked);
      this.hide();
      on.entered();
    });
    this.forget.addEventListener('click', () => {
      saveToken('', false);
      this.forget.hidden = true;
      on.forgotten();
    });
    this.forget.hidden = !getToken();
  }

  get shown() {
    return !this.auth.hidden;
  }

  /** @param {string} text why a token is needed */
  show(text) {
    document.body.dataset.state = 'auth';
    this.auth.hidden = false;
    this.text.textContent = text;
    this.input.value = '';
    this.input.focus();
  }

  hide() {
    this.auth.hidden = true;
    this.forget.hidden = !getToken();
  }
}

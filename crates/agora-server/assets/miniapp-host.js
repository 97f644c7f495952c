// The portal's side of the mini-app bridge, loaded by the host page /apps/{slug}.
//
// The mini-app runs in #miniapp-frame on an origin of its own and asks for things by postMessage
// ({ agora: 1, id, method, params }). This script answers only messages from that frame and that
// origin, checks every request's shape, and does the work through the portal's JSON endpoints with
// the person's session. Consent and payment are decided in the portal's own dialogs, which show
// what the server says (the app's and seller's names, each scope's reason, each line and the
// amount), never what the mini-app sent.
(function () {
  'use strict';

  const body = document.body;
  const APP_ORIGIN = body.dataset.appOrigin || '';
  const SLUG = body.dataset.appSlug || '';
  const APP_NAME = body.dataset.appName || SLUG;
  const SELLER_NAME = body.dataset.sellerName || '';
  const CSRF = (document.querySelector('meta[name="agora-csrf"]') || {}).content || '';
  const frame = document.getElementById('miniapp-frame');
  const BASE = `/apps/${encodeURIComponent(SLUG)}`;

  // Mini-apps answer only the configured portal origin (and may only be framed by it): opened at
  // another address (localhost for 127.0.0.1, say), the frame stays blank. Say so instead.
  const PORTAL_ORIGIN = body.dataset.portalOrigin || '';
  const originWarning = document.getElementById('origin-warning');
  if (PORTAL_ORIGIN && location.origin !== PORTAL_ORIGIN && originWarning) {
    originWarning.hidden = false;
  }

  // Limits on what one mini-app can ask for at once.
  const IN_FLIGHT_MAX = 16;
  const SCOPES_MAX = 8;
  const LINES_MAX = 50;
  const QUANTITY_MAX = 1000;
  const ID_LENGTH_MAX = 100;
  const TITLE_LENGTH_MAX = 200;
  const BODY_LENGTH_MAX = 2000;
  // A dialog's decisive button waits this long, so a click meant for the app cannot land on it.
  const ARM_DELAY_MS = 500;

  if (!frame || !APP_ORIGIN || !SLUG) return;

  class BridgeError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  // Tell the frame we listen: now, after each load of its document, and whenever the SDK says
  // hello. Messages it posts before this script runs would be lost, so the SDK holds its calls
  // until it hears this.
  function announce() {
    if (frame.contentWindow) frame.contentWindow.postMessage({ agora: 1, ready: true }, APP_ORIGIN);
  }
  frame.addEventListener('load', announce);

  function reply(target, message) {
    target.postMessage(message, APP_ORIGIN);
  }

  function isPlainObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }

  // ---- The portal's JSON endpoints ----

  async function problemOf(response) {
    try {
      const problem = await response.json();
      return (problem && (problem.detail || problem.title)) || `HTTP ${response.status}`;
    } catch (_) {
      return `HTTP ${response.status}`;
    }
  }

  // Calls an endpoint; a refusal becomes a BridgeError, its code chosen by `codes` (status →
  // code) or else by the status class.
  async function portal(method, path, payload, codes = {}) {
    const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
    if (method !== 'GET') {
      init.headers['content-type'] = 'application/json';
      init.headers['x-csrf-token'] = CSRF;
      init.body = JSON.stringify(payload === undefined ? {} : payload);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw new BridgeError('unavailable', 'The portal could not be reached.');
    }
    if (response.ok) {
      try {
        return await response.json();
      } catch (_) {
        throw new BridgeError('unavailable', 'The portal sent an answer that is not JSON.');
      }
    }
    const detail = await problemOf(response);
    const status = response.status;
    let code = codes[status];
    if (!code) {
      if (status === 401) code = 'unavailable';
      else if (status === 403) code = 'denied';
      else if (status === 429) code = 'rate_limited';
      else if (status >= 400 && status < 500) code = 'bad_request';
      else code = 'unavailable';
    }
    throw new BridgeError(code, detail);
  }

  // ---- Dialogs ----

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(label, className) {
    const node = element('button', className, label);
    node.type = 'button';
    return node;
  }

  // Opens a modal dialog titled `title`; `fill(dialog)` adds its content, `buttons` its buttons
  // (the first gets the focus). Resolves with what `onPress(value, control)` returns for the button
  // pressed, or with `control.escapeValue` when the person presses Escape or the dialog closes.
  // `onPress` may return undefined to keep the dialog open (to show a failure); while
  // `control.busy` is set, Escape does nothing.
  function openDialog({ id, title, fill, buttons, escapeValue, onPress }) {
    const dialog = element('dialog', 'agora-dialog');
    dialog.id = id;
    const heading = element('h2', 'agora-dialog-title', title);
    heading.id = `${id}-title`;
    dialog.setAttribute('aria-labelledby', heading.id);
    dialog.append(heading);
    fill(dialog);
    const row = element('div', 'agora-dialog-buttons');
    dialog.append(row);
    document.body.append(dialog);

    return new Promise((resolve) => {
      let settled = false;
      const control = { dialog, row, escapeValue, busy: false, buttons: [] };
      control.finish = (value) => {
        if (settled) return;
        settled = true;
        if (dialog.open) dialog.close();
        dialog.remove();
        resolve(value);
      };
      dialog.addEventListener('cancel', (event) => {
        if (control.busy) event.preventDefault();
      });
      dialog.addEventListener('close', () => {
        if (!control.busy) control.finish(control.escapeValue);
      });
      for (const spec of buttons) {
        const node = button(spec.label, spec.primary ? 'agora-primary' : 'agora-secondary');
        node.value = spec.value;
        if (spec.primary) {
          node.disabled = true;
          setTimeout(() => { node.disabled = false; }, ARM_DELAY_MS);
        }
        node.addEventListener('click', async () => {
          if (control.busy || settled) return;
          const outcome = await onPress(spec.value, control);
          if (outcome !== undefined) control.finish(outcome);
          else if (!dialog.open) control.finish(control.escapeValue);
        });
        row.append(node);
        control.buttons.push(node);
      }
      dialog.showModal();
      control.buttons[0].focus();
    });
  }

  function formatTime(text) {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return String(text);
    return date.toLocaleString(document.documentElement.lang || undefined, {
      weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
    });
  }

  // ---- Methods ----

  function scopesOf(claims) {
    if (Array.isArray(claims.scope)) return claims.scope.map(String);
    if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
    return [];
  }

  async function launchContext() {
    const launch = await portal('POST', `${BASE}/launch`, {});
    const claims = launch.claims || {};
    const context = {
      token: launch.token,
      subject: claims.sub,
      scopes: scopesOf(claims),
      expires_at: typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : claims.exp,
    };
    if (typeof claims.name === 'string') context.name = claims.name;
    if (typeof claims.email === 'string') context.email = claims.email;
    return context;
  }

  async function listings() {
    const answer = await portal('GET', `${BASE}/listings`);
    return Array.isArray(answer.listings) ? answer.listings : [];
  }

  async function requestScopes(params) {
    const scopes = params.scopes;
    if (!Array.isArray(scopes) || scopes.length === 0 || scopes.length > SCOPES_MAX
      || !scopes.every((scope) => typeof scope === 'string' && /^[a-z_]{1,32}$/.test(scope))) {
      throw new BridgeError('bad_request', `requestScopes takes 1 to ${SCOPES_MAX} scope names.`);
    }
    const wanted = [...new Set(scopes)];
    const consent = await portal('GET', `${BASE}/consent?scopes=${encodeURIComponent(wanted.join(','))}`);
    const asked = Array.isArray(consent.scopes) ? consent.scopes : [];
    if (asked.length > 0 && asked.every((scope) => scope.granted)) {
      return { granted: asked.map((scope) => scope.scope) };
    }
    // The contract nests the names under `app`; a flat answer is read the same way.
    const app = isPlainObject(consent.app) ? consent.app : consent;
    const appName = app.name || APP_NAME;
    const sellerName = app.seller_name || SELLER_NAME;
    const decision = await openDialog({
      id: 'agora-consent',
      title: `Share with ${appName}?`,
      escapeValue: 'deny',
      buttons: [
        { label: 'Don\'t allow', value: 'deny' },
        { label: 'Allow', value: 'allow', primary: true },
      ],
      fill(dialog) {
        dialog.append(element('p', 'agora-dialog-lede',
          `${appName}, run by ${sellerName}, asks to use:`));
        const list = element('ul', 'agora-scopes');
        for (const scope of asked) {
          const item = element('li', 'agora-scope');
          item.append(element('strong', 'agora-scope-title', scope.title || scope.scope));
          if (scope.granted) item.append(element('span', 'agora-scope-granted', ' (already allowed)'));
          if (scope.reason) item.append(element('span', 'agora-scope-reason', `Why: ${scope.reason}`));
          list.append(item);
        }
        dialog.append(list);
        dialog.append(element('p', 'agora-dialog-hint',
          'You can take this back at any time on your Grants page.'));
      },
      async onPress(value, control) {
        if (value !== 'allow') return 'deny';
        control.busy = true;
        control.buttons.forEach((node) => { node.disabled = true; });
        try {
          const granted = await portal('POST', `${BASE}/grants`, { scopes: wanted });
          return { granted: Array.isArray(granted.granted) ? granted.granted : wanted };
        } catch (error) {
          return { error };
        } finally {
          control.busy = false;
        }
      },
    });
    if (decision === 'deny') throw new BridgeError('denied', 'The person did not allow it.');
    if (decision.error) throw decision.error;
    return decision;
  }

  function checkLines(lines) {
    if (!Array.isArray(lines) || lines.length === 0 || lines.length > LINES_MAX) {
      throw new BridgeError('bad_request', `A payment takes 1 to ${LINES_MAX} lines.`);
    }
    return lines.map((line) => {
      const ok = isPlainObject(line)
        && typeof line.listing_id === 'string' && line.listing_id.length <= ID_LENGTH_MAX
        && Number.isInteger(line.quantity) && line.quantity >= 1 && line.quantity <= QUANTITY_MAX
        && (line.slot_id === undefined || line.slot_id === null
          || (typeof line.slot_id === 'string' && line.slot_id.length <= ID_LENGTH_MAX));
      if (!ok) {
        throw new BridgeError('bad_request',
          `Each line is { listing_id, quantity (1 to ${QUANTITY_MAX}), slot_id? }.`);
      }
      const clean = { listing_id: line.listing_id, quantity: line.quantity };
      if (typeof line.slot_id === 'string') clean.slot_id = line.slot_id;
      return clean;
    });
  }

  async function requestPayment(params) {
    let id;
    if (typeof params.paymentRequest === 'string' && params.lines === undefined) {
      id = params.paymentRequest;
      if (!/^[A-Za-z0-9_-]+$/.test(id) || id.length > ID_LENGTH_MAX) {
        throw new BridgeError('bad_request', 'That is not a payment request id.');
      }
    } else if (params.paymentRequest === undefined) {
      const lines = checkLines(params.lines);
      const created = await portal('POST', `${BASE}/payment-requests`, { lines }, { 409: 'payment_failed', 422: 'payment_failed' });
      if (!created || typeof created.id !== 'string') {
        throw new BridgeError('unavailable', 'The portal created no payment request.');
      }
      id = created.id;
    } else {
      throw new BridgeError('bad_request', 'requestPayment takes either paymentRequest or lines.');
    }
    const path = `${BASE}/payment-requests/${encodeURIComponent(id)}`;
    // Everything the person sees and confirms comes from here, the server's view of the request.
    const request = await portal('GET', path, undefined,
      { 404: 'bad_request', 403: 'bad_request' }).catch((error) => {
      if (error.code === 'bad_request') {
        throw new BridgeError('bad_request', 'There is no such payment request for this app.');
      }
      throw error;
    });
    if (request.state === 'paid') return { state: 'paid', order_id: request.order_id };
    if (request.state !== 'pending') {
      throw new BridgeError('payment_failed', `This payment request is ${request.state}.`);
    }

    const sellerName = request.seller_name || SELLER_NAME;
    const outcome = await openDialog({
      id: 'agora-cashier',
      title: `Pay ${sellerName}`,
      escapeValue: 'cancel',
      buttons: [
        { label: 'Cancel', value: 'cancel' },
        { label: `Pay ${request.amount_text}`, value: 'pay', primary: true },
      ],
      fill(dialog) {
        dialog.append(element('p', 'agora-dialog-lede',
          `${APP_NAME} asks you to pay ${sellerName} from your Agora wallet.`));
        const table = element('table', 'agora-lines all-columns');
        const caption = element('caption', 'agora-visually-hidden', 'What you pay for');
        table.append(caption);
        const tbody = element('tbody');
        for (const line of Array.isArray(request.lines) ? request.lines : []) {
          const row = element('tr');
          const what = element('td', 'agora-line-what', `${line.quantity} × ${line.title}`);
          if (line.slot_starts_at) {
            what.append(element('span', 'agora-line-slot', formatTime(line.slot_starts_at)));
          }
          row.append(what, element('td', 'agora-amount', line.amount_text));
          tbody.append(row);
        }
        const total = element('tr', 'agora-total');
        const label = element('th', '', 'Total');
        label.scope = 'row';
        const amount = element('td', 'agora-amount', request.amount_text);
        amount.id = 'agora-cashier-amount';
        total.append(label, amount);
        tbody.append(total);
        table.append(tbody);
        dialog.append(table);
        const alert = element('p', 'agora-dialog-alert');
        alert.id = 'agora-cashier-error';
        alert.setAttribute('role', 'alert');
        alert.hidden = true;
        dialog.append(alert);
      },
      async onPress(value, control) {
        if (value !== 'pay') return 'cancel';
        control.busy = true;
        control.buttons.forEach((node) => { node.disabled = true; });
        control.buttons[1].textContent = 'Paying…';
        try {
          const paid = await portal('POST', `${path}/confirm`,
            { amount: request.amount, currency: request.currency },
            { 409: 'payment_failed', 422: 'payment_failed' });
          return { state: 'paid', order_id: paid.order_id };
        } catch (error) {
          // Keep the dialog open to say why; closing it reports the failure to the app.
          const failure = new BridgeError(error.code === 'unavailable' ? 'unavailable' : 'payment_failed',
            error.message);
          control.escapeValue = { failure };
          const alert = control.dialog.querySelector('#agora-cashier-error');
          alert.textContent = `The payment failed: ${error.message}`;
          alert.hidden = false;
          control.buttons.forEach((node) => node.remove());
          const close = button('Close', 'agora-secondary');
          close.addEventListener('click', () => control.finish(control.escapeValue));
          control.row.append(close);
          close.focus();
          return undefined;
        } finally {
          control.busy = false;
        }
      },
    });
    if (outcome === 'cancel') {
      // Best effort: a cancelled request can no longer be paid.
      await portal('POST', `${path}/cancel`, {}).catch(() => {});
      throw new BridgeError('cancelled', 'The person cancelled the payment.');
    }
    if (outcome.failure) throw outcome.failure;
    return outcome;
  }

  async function notify(params) {
    const { title, body: text } = params;
    if (typeof title !== 'string' || title.length === 0 || title.length > TITLE_LENGTH_MAX
      || typeof text !== 'string' || text.length > BODY_LENGTH_MAX) {
      throw new BridgeError('bad_request',
        `notify takes a title (1 to ${TITLE_LENGTH_MAX} characters) and a body (up to ${BODY_LENGTH_MAX}).`);
    }
    await portal('POST', `${BASE}/notifications`, { title, body: text },
      { 403: 'not_granted', 429: 'rate_limited' });
    return { ok: true };
  }

  function close() {
    // After the reply below is posted.
    setTimeout(() => window.location.assign('/apps'), 0);
    return { ok: true };
  }

  const METHODS = { launchContext, listings, requestScopes, requestPayment, notify, close };
  const NEEDS_DIALOG = new Set(['requestScopes', 'requestPayment']);
  let inFlight = 0;
  let personBusy = false;

  window.addEventListener('message', async (event) => {
    if (event.origin !== APP_ORIGIN || event.source !== frame.contentWindow) return;
    const message = event.data;
    if (isPlainObject(message) && message.agora === 1 && message.hello === true) {
      announce();
      return;
    }
    // Only requests are answered; anything else from the frame (such as a forged reply) is dropped.
    if (!isPlainObject(message) || message.agora !== 1 || !Number.isSafeInteger(message.id)
      || typeof message.method !== 'string') {
      return;
    }
    const target = event.source;
    const { id, method, params } = message;
    if (!Object.prototype.hasOwnProperty.call(METHODS, method)) {
      reply(target, { agora: 1, id, error: { code: 'bad_request', message: `Unknown method ${method}.` } });
      return;
    }
    if (!isPlainObject(params)) {
      reply(target, { agora: 1, id, error: { code: 'bad_request', message: 'params must be an object.' } });
      return;
    }
    if (inFlight >= IN_FLIGHT_MAX) {
      reply(target, { agora: 1, id, error: { code: 'rate_limited', message: 'Too many calls at once.' } });
      return;
    }
    // One consent or payment at a time: the person answers one dialog before the next.
    const needsPerson = NEEDS_DIALOG.has(method);
    if (needsPerson && personBusy) {
      reply(target, { agora: 1, id, error: { code: 'bad_request', message: 'Another request is waiting for the person.' } });
      return;
    }
    if (needsPerson) personBusy = true;
    inFlight += 1;
    try {
      const result = await METHODS[method](params);
      reply(target, { agora: 1, id, result });
    } catch (error) {
      const code = error instanceof BridgeError ? error.code : 'unavailable';
      const text = error instanceof BridgeError ? error.message : 'The portal failed to answer.';
      reply(target, { agora: 1, id, error: { code, message: text } });
    } finally {
      inFlight -= 1;
      if (needsPerson) personBusy = false;
    }
  });

  announce();
}());

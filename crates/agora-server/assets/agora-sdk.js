// Agora mini-app SDK, served at /agora-sdk.js on every mini-app origin.
//
// A mini-app runs in an iframe of the Agora portal, on an origin of its own. It reaches the portal
// only through postMessage: each call below sends { agora: 1, id, method, params } to the portal
// and resolves with the portal's { agora: 1, id, result }, or rejects with an Error whose `code` is
// one of: denied, cancelled, payment_failed, rate_limited, not_granted, bad_request, unavailable.
//
// The server replaces the placeholder below with the portal's origin. A reply counts only if it
// comes from that origin, from the parent window, and answers a call still waiting; anything else
// is ignored and counted in `agora.rejectedMessages`. Calls wait until the portal has said it is
// listening ({ agora: 1, ready: true }, which { agora: 1, hello: true } asks for).
(function () {
  'use strict';

  const PORTAL_ORIGIN = '__AGORA_PORTAL_ORIGIN__';
  // Consent and payment wait for the person, so a call gets two minutes before it gives up.
  const TIMEOUT_MS = 120000;
  // Calls queued before the portal says it is listening; more is a bug in the app.
  const QUEUED_MAX = 64;
  const CODES = ['denied', 'cancelled', 'payment_failed', 'rate_limited', 'not_granted',
    'bad_request', 'unavailable'];

  const pending = new Map();
  const queue = [];
  let nextId = 1;
  let portalReady = false;
  let rejectedMessages = 0;

  const insidePortal = window.parent !== window && isOrigin(PORTAL_ORIGIN);

  function isOrigin(text) {
    try {
      return new URL(text).origin === text;
    } catch (_) {
      return false;
    }
  }

  function agoraError(code, message) {
    const error = new Error(message);
    error.name = 'AgoraError';
    error.code = CODES.includes(code) ? code : 'unavailable';
    return error;
  }

  function isPlainObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }

  function post(message) {
    window.parent.postMessage(message, PORTAL_ORIGIN);
  }

  function call(method, params) {
    if (!insidePortal) {
      return Promise.reject(agoraError('unavailable',
        'This mini-app works only inside the Agora portal: open it from the Agora portal\'s Apps page.'));
    }
    if (!portalReady && queue.length >= QUEUED_MAX) {
      return Promise.reject(agoraError('unavailable', 'Too many calls before the portal answered.'));
    }
    const id = nextId;
    nextId += 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(agoraError('unavailable', `The portal did not answer ${method} within ${TIMEOUT_MS / 1000} s.`));
      }, TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      const message = { agora: 1, id, method, params };
      if (portalReady) post(message);
      else queue.push(message);
    });
  }

  window.addEventListener('message', (event) => {
    const data = event.data;
    const trusted = event.origin === PORTAL_ORIGIN && event.source === window.parent
      && isPlainObject(data) && data.agora === 1;
    if (!trusted) {
      rejectedMessages += 1;
      return;
    }
    // The portal says it is listening (after it loaded, and whenever this frame loads).
    if (data.ready === true && !('id' in data)) {
      portalReady = true;
      while (queue.length > 0) post(queue.shift());
      return;
    }
    const waiting = Number.isInteger(data.id) ? pending.get(data.id) : undefined;
    const isResult = 'result' in data && !('error' in data);
    const isError = isPlainObject(data.error) && !('result' in data);
    if (!waiting || !(isResult || isError)) {
      rejectedMessages += 1;
      return;
    }
    pending.delete(data.id);
    clearTimeout(waiting.timer);
    if (isResult) {
      waiting.resolve(data.result);
    } else {
      const message = typeof data.error.message === 'string' ? data.error.message : 'The portal refused.';
      waiting.reject(agoraError(String(data.error.code), message));
    }
  });

  // Ask the portal to say it is listening, in case it already was when this page loaded.
  if (insidePortal) post({ agora: 1, hello: true });

  function requireObject(value, what) {
    if (!isPlainObject(value)) throw agoraError('bad_request', `${what} must be an object.`);
    return value;
  }

  // Arguments are checked here so that a mistake shows up where it was made; the portal checks
  // them again, since it trusts nothing a mini-app sends.
  function guarded(body) {
    return (...args) => {
      try {
        return body(...args);
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }

  const agora = {
    launchContext: guarded(() => call('launchContext', {})),
    listings: guarded(() => call('listings', {})),
    requestScopes: guarded((scopes) => {
      if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string')) {
        throw agoraError('bad_request', 'requestScopes takes a non-empty array of scope names, such as ["profile"].');
      }
      return call('requestScopes', { scopes: scopes.slice() });
    }),
    requestPayment: guarded((request) => {
      requireObject(request, 'requestPayment\'s argument');
      const hasId = typeof request.paymentRequest === 'string';
      const hasLines = Array.isArray(request.lines);
      if (hasId === hasLines) {
        throw agoraError('bad_request', 'requestPayment takes either { paymentRequest: "pyr_…" } or { lines: [...] }.');
      }
      return call('requestPayment', hasId
        ? { paymentRequest: request.paymentRequest }
        : { lines: request.lines.map((line) => ({ ...requireObject(line, 'Each line') })) });
    }),
    notify: guarded((notification) => {
      requireObject(notification, 'notify\'s argument');
      if (typeof notification.title !== 'string' || typeof notification.body !== 'string') {
        throw agoraError('bad_request', 'notify takes { title, body }, both strings.');
      }
      return call('notify', { title: notification.title, body: notification.body });
    }),
    close: guarded(() => call('close', {})),
  };
  Object.defineProperty(agora, 'rejectedMessages', { get: () => rejectedMessages, enumerable: true });
  Object.defineProperty(agora, 'portalOrigin', { value: PORTAL_ORIGIN, enumerable: true });
  window.agora = Object.freeze(agora);
}());

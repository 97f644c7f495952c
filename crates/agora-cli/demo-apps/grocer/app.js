// FreshMart's shop mini-app: lists FreshMart's products, keeps a basket with a running total, and
// pays for it from the Agora wallet through the portal's cashier, which shows the exact amount.
'use strict';

const agora = window.agora;
const $ = (id) => document.getElementById(id);
const QUANTITY_MAX = 20;

function say(text) {
  $('problem').textContent = '';
  $('status').textContent = text;
}

function complain(text) {
  $('problem').textContent = text;
}

function explain(error) {
  return error && error.message ? error.message : 'Something went wrong.';
}

// Minor units to text, for the basket's estimate (the demo's currencies have two decimals).
function money(minor, currency) {
  return `${(minor / 100).toFixed(2)} ${currency}`;
}

async function greet() {
  const context = await agora.launchContext();
  if (typeof context.name === 'string' && context.name) {
    $('greeting').textContent = `Hello, ${context.name}. What can we get you?`;
    $('use-profile').hidden = true;
  } else {
    $('greeting').textContent = 'Hello. Fill your basket and pay from your Agora wallet.';
    $('use-profile').hidden = false;
  }
}

async function askForProfile() {
  try {
    await agora.requestScopes(['profile', 'email']);
    await greet();
  } catch (error) {
    if (error.code === 'denied') say('FreshMart will not use your name or e-mail.');
    else complain(explain(error));
  }
}

function basket() {
  return [...document.querySelectorAll('input.quantity')]
    .map((input) => ({ input, quantity: Number.parseInt(input.value, 10) }))
    .filter(({ quantity }) => Number.isInteger(quantity) && quantity > 0);
}

function updateTotal() {
  const totals = new Map();
  for (const { input, quantity } of basket()) {
    const currency = input.dataset.currency;
    totals.set(currency, (totals.get(currency) || 0) + quantity * Number(input.dataset.price));
  }
  const first = document.querySelector('input.quantity');
  $('total').textContent = totals.size === 0
    ? money(0, first ? first.dataset.currency : '')
    : [...totals].map(([currency, minor]) => money(minor, currency)).join(' + ');
  $('pay').disabled = totals.size === 0;
}

function renderProducts(listings) {
  const products = listings.filter((listing) => listing.kind === 'product');
  const list = $('products');
  list.replaceChildren();
  if (products.length === 0) {
    list.append(Object.assign(document.createElement('li'), { className: 'hint', textContent: 'Nothing on the shelves right now.' }));
    return;
  }
  for (const product of products) {
    const item = document.createElement('li');
    item.className = 'product';
    const text = document.createElement('div');
    text.className = 'product-text';
    const label = document.createElement('label');
    label.htmlFor = `quantity-${product.id}`;
    label.textContent = product.title;
    const price = Object.assign(document.createElement('span'), { className: 'price', textContent: product.price_text });
    text.append(label, price);
    const input = document.createElement('input');
    input.type = 'number';
    input.className = 'quantity';
    input.id = `quantity-${product.id}`;
    input.name = product.id;
    input.min = '0';
    input.max = String(Math.min(QUANTITY_MAX, typeof product.stock === 'number' ? product.stock : QUANTITY_MAX));
    input.step = '1';
    input.value = '0';
    input.inputMode = 'numeric';
    input.dataset.price = String(product.price);
    input.dataset.currency = product.currency;
    input.dataset.title = product.title;
    input.addEventListener('input', updateTotal);
    item.append(text, input);
    list.append(item);
  }
  updateTotal();
}

async function pay(event) {
  event.preventDefault();
  const chosen = basket();
  if (chosen.length === 0) {
    complain('Your basket is empty.');
    return;
  }
  $('pay').disabled = true;
  try {
    const paid = await agora.requestPayment({
      lines: chosen.map(({ input, quantity }) => ({ listing_id: input.name, quantity })),
    });
    const what = chosen.map(({ input, quantity }) => `${quantity} × ${input.dataset.title}`).join(', ');
    say(`Paid: ${what}. Order ${paid.order_id}.`);
    for (const { input } of chosen) input.value = '0';
  } catch (error) {
    if (error.code === 'cancelled') say('Payment cancelled: your basket is still here.');
    else complain(`Not paid: ${explain(error)}`);
  } finally {
    updateTotal();
  }
}

async function start() {
  if (!agora) {
    complain('The Agora SDK did not load.');
    return;
  }
  $('use-profile').addEventListener('click', askForProfile);
  $('basket').addEventListener('submit', pay);
  try {
    await greet();
    renderProducts(await agora.listings());
  } catch (error) {
    complain(explain(error));
  }
}

start();

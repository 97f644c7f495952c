// Vila Clinic's consultation mini-app: greets the person (if they let the clinic use their name),
// lists the clinic's doctors with their free times, and books one, paid from the Agora wallet
// through the portal's cashier. Everything it knows about the person comes from the portal.
'use strict';

const agora = window.agora;
const $ = (id) => document.getElementById(id);

function say(text) {
  $('problem').textContent = '';
  $('status').textContent = text;
}

function complain(text) {
  $('problem').textContent = text;
}

function explain(error) {
  if (error && error.code === 'unavailable') return error.message;
  return error && error.message ? error.message : 'Something went wrong.';
}

function toDate(value) {
  if (typeof value === 'number') {
    // Seconds, milliseconds or microseconds since the epoch.
    if (value > 1e14) return new Date(value / 1000);
    if (value > 1e11) return new Date(value);
    return new Date(value * 1000);
  }
  return new Date(value);
}

function when(value) {
  const date = toDate(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString('en-GB', {
    weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
}

async function greet() {
  const context = await agora.launchContext();
  if (typeof context.name === 'string' && context.name) {
    $('greeting').textContent = `Hello, ${context.name}. Which doctor would you like to see?`;
    $('use-name').hidden = true;
  } else {
    $('greeting').textContent = 'Hello. Vila Clinic does not know your name yet.';
    $('use-name').hidden = false;
  }
  return context;
}

async function askForName() {
  try {
    await agora.requestScopes(['profile']);
    await greet();
    say('Thank you: Vila Clinic will put your name on your bookings.');
  } catch (error) {
    if (error.code === 'denied') say('Vila Clinic will not use your name. You can still book.');
    else complain(explain(error));
  }
}

function renderDoctors(listings) {
  const doctors = listings.filter((listing) => listing.kind === 'service');
  const holder = $('doctors');
  holder.replaceChildren();
  if (doctors.length === 0) {
    holder.append(Object.assign(document.createElement('p'), { textContent: 'No doctor has free times right now.' }));
    return 0;
  }
  let free = 0;
  for (const doctor of doctors) {
    const fieldset = document.createElement('fieldset');
    fieldset.className = 'doctor';
    const legend = document.createElement('legend');
    legend.textContent = doctor.title;
    fieldset.append(legend);
    if (doctor.description) {
      fieldset.append(Object.assign(document.createElement('p'), { className: 'hint', textContent: doctor.description }));
    }
    fieldset.append(Object.assign(document.createElement('p'), { className: 'price', textContent: doctor.price_text }));
    const slots = (doctor.slots || []).filter((slot) => slot.available);
    if (slots.length === 0) {
      fieldset.append(Object.assign(document.createElement('p'), { className: 'hint', textContent: 'No free times.' }));
    }
    const list = document.createElement('div');
    list.className = 'slots';
    for (const slot of slots) {
      free += 1;
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = 'slot';
      input.id = `slot-${slot.id}`;
      input.value = slot.id;
      input.dataset.listing = doctor.id;
      input.dataset.doctor = doctor.title;
      input.dataset.when = when(slot.starts_at);
      const label = document.createElement('label');
      label.htmlFor = input.id;
      label.className = 'slot';
      label.append(input, document.createTextNode(` ${when(slot.starts_at)}`));
      list.append(label);
    }
    fieldset.append(list);
    holder.append(fieldset);
  }
  return free;
}

async function loadDoctors() {
  const listings = await agora.listings();
  const free = renderDoctors(listings);
  $('book').disabled = free === 0;
}

let booked = null;

async function book(event) {
  event.preventDefault();
  const chosen = document.querySelector('input[name="slot"]:checked');
  if (!chosen) {
    complain('Choose a time first.');
    return;
  }
  $('book').disabled = true;
  try {
    const paid = await agora.requestPayment({
      lines: [{ listing_id: chosen.dataset.listing, quantity: 1, slot_id: chosen.value }],
    });
    booked = { doctor: chosen.dataset.doctor, when: chosen.dataset.when, order: paid.order_id };
    say(`Booked: ${booked.doctor}, ${booked.when}. Paid from your wallet, order ${paid.order_id}.`);
    $('reminder').hidden = false;
    await loadDoctors();
  } catch (error) {
    if (error.code === 'cancelled') say('Payment cancelled: nothing was booked.');
    else complain(`Not booked: ${explain(error)}`);
  } finally {
    $('book').disabled = !document.querySelector('input[name="slot"]');
  }
}

async function remind() {
  if (!booked) return;
  try {
    await agora.requestScopes(['notifications']);
    await agora.notify({
      title: 'Your Vila Clinic appointment',
      body: `${booked.doctor}, ${booked.when} (order ${booked.order}).`,
    });
    say('A reminder is in your Agora inbox.');
  } catch (error) {
    if (error.code === 'denied') say('No reminder: Vila Clinic may not send you notifications.');
    else if (error.code === 'rate_limited') complain('Vila Clinic sent too many notifications; try later.');
    else complain(explain(error));
  }
}

async function start() {
  if (!agora) {
    complain('The Agora SDK did not load.');
    return;
  }
  $('use-name').addEventListener('click', askForName);
  $('booking').addEventListener('submit', book);
  $('remind').addEventListener('click', remind);
  try {
    await greet();
  } catch (error) {
    $('greeting').textContent = 'Hello.';
    complain(explain(error));
    return;
  }
  try {
    await loadDoctors();
  } catch (error) {
    complain(`The doctors' times could not be loaded: ${explain(error)}`);
  }
}

start();

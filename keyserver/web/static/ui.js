// DOM helpers shared by the pages: messages in plain words, errors tied to
// their fields, notices that go away when the user starts something new.
import { ERRNO } from "./api.js";

export const $ = (id) => document.getElementById(id);

export function show(el, on = true) { el.hidden = !on; }

export function setText(el, text) { el.textContent = text; }

// FieldError is a failure that belongs to one input (its id): the message
// is shown under it, tied with aria-describedby, and it gets the focus.
export class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

// Invalid carries several FieldErrors of one form (client-side checks).
export class Invalid extends Error {
  constructor(errors) {
    super(errors[0]?.message || "invalid");
    this.errors = errors;
  }
}

// plural: "1 try", "2 tries".
export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// waitWords turns a wait in seconds (retryAfter) into words: "in a few
// seconds", "in 5 minutes", "in about an hour", "in about 3 hours".
export function waitWords(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 60));
  if (s <= 10) return "in a few seconds";
  if (s < 60) return "in less than a minute";
  if (s < 50 * 60) {
    const m = Math.ceil(s / 60);
    return m === 1 ? "in a minute" : `in ${m} minutes`;
  }
  if (s < 90 * 60) return "in about an hour";
  if (s < 20 * 3600) return `in about ${Math.round(s / 3600)} hours`;
  return "in about a day";
}

export const tryAgain = (err) => `Try again ${waitWords(err?.body?.retryAfter)}.`;

export const DISABLED = "This account has been disabled. If you think this is a mistake, contact the people who run this server.";

// message turns an error into a sentence for the user (clients act on the
// errno, spec 1.4). Pages handle the errnos whose words depend on where
// they happen before falling back to this.
export function message(err) {
  switch (err?.errno) {
    case ERRNO.ACCOUNT_EXISTS: return "An account with this email address already exists. Sign in instead.";
    case ERRNO.UNKNOWN_ACCOUNT: return "There is no account with this email address.";
    case ERRNO.INCORRECT_PASSWORD: return "That password is not right. Check it and try again.";
    case ERRNO.UNVERIFIED: return "Confirm your email address first: open the link in the email we sent you.";
    case ERRNO.INVALID_CODE:
      if (typeof err.body.tries === "number") {
        return err.body.tries > 0 ? `Wrong code. ${plural(err.body.tries, "try", "tries")} left.` : "Wrong code, and that was the last try.";
      }
      return "That code is not right.";
    case ERRNO.INVALID_PARAM:
    case ERRNO.MISSING_PARAM:
      if (err.body.param === "email") return "Enter a valid email address, like name@example.com.";
      if (err.body.param === "code" || err.body.param === "unblockCode") return "The code has 8 digits.";
      if (err.body.param === "name") return "Use a name of 1 to 255 characters.";
      break;
    case ERRNO.INVALID_TOKEN: return "This device was signed out. Sign in again.";
    case ERRNO.TOO_MANY_REQUESTS: return `Too many attempts. ${tryAgain(err)}`;
    case ERRNO.REQUEST_BLOCKED: return "Signing in from here is paused for your safety. We can email you a code to continue.";
    case ERRNO.DISABLED: return DISABLED;
    case ERRNO.UNKNOWN_DEVICE: return "That device is no longer signed in.";
    case ERRNO.SERVICE_UNAVAILABLE: return `The server is busy. ${tryAgain(err)}`;
  }
  if (err?.status === 503) return "The server is busy. Try again in a moment.";
  if (err instanceof TypeError) return "The server cannot be reached. Check your connection and try again.";
  if (err?.status) return "Something went wrong on the server. Try again in a moment.";
  return err?.message || String(err);
}

// errorElement is the hidden, initially empty message element of a field,
// made once (so that filling it later is announced: role=alert).
function errorElement(input) {
  let el = $(input.id + "-error");
  if (!el) {
    el = document.createElement("p");
    el.id = input.id + "-error";
    el.className = "field-error";
    el.setAttribute("role", "alert");
    el.hidden = true;
    (input.closest("label") || input).after(el);
  }
  return el;
}

function describedBy(input, id, on) {
  const ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && x !== id);
  if (on) ids.unshift(id);
  if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
  else input.removeAttribute("aria-describedby");
}

export function fieldError(id, text) {
  const input = $(id);
  const el = errorElement(input);
  el.textContent = text;
  el.hidden = false;
  input.setAttribute("aria-invalid", "true");
  describedBy(input, el.id, true);
}

export function clearFieldError(input) {
  const el = $(input.id + "-error");
  if (el) { el.hidden = true; el.textContent = ""; }
  input.removeAttribute("aria-invalid");
  describedBy(input, input.id + "-error", false);
}

// prepareFields makes the error elements of a form's inputs and clears a
// field's error as soon as it is edited.
export function prepareFields(root) {
  for (const input of root.querySelectorAll("input[id]:not([hidden])")) {
    errorElement(input);
    input.addEventListener("input", () => { if (input.hasAttribute("aria-invalid")) clearFieldError(input); });
  }
}

// startAction clears every notice, status and error on the page (and the
// ?notice= of the address): called whenever the user starts something new.
export function startAction() {
  for (const el of document.querySelectorAll(".notice, .error, .field-error, .status.result")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const input of document.querySelectorAll("[aria-invalid]")) clearFieldError(input);
  if (new URLSearchParams(location.search).has("notice")) history.replaceState(null, "", location.pathname);
}

// showError shows err: a FieldError (or several) under its field, with
// the focus on the first; anything else in the form's (or page's) alert.
export function showError(err, general, fieldFor) {
  const errors = err instanceof Invalid ? err.errors : err instanceof FieldError ? [err] : null;
  const field = errors ? null : fieldFor?.(err);
  if (errors || field) {
    const list = errors || [new FieldError(field, message(err))];
    for (const e of list) fieldError(e.field, e.message);
    $(list[0].field).focus();
    return;
  }
  if (general) {
    general.textContent = message(err);
    general.hidden = false;
  }
}

// check returns the FieldErrors of simple rules: [id, test, message]...
export function check(...rules) {
  const errors = rules.filter(([, ok]) => !ok).map(([id, , text]) => new FieldError(id, text));
  if (errors.length) throw new Invalid(errors);
}

// onSubmit wires a form's submit to fn(FormData, onProgress) with its
// buttons disabled, errors shown (see showError; fieldFor maps a server
// error to the id of its input; onError may handle one, returning true, or
// replace it, returning another error) and its <progress> (if any)
// following the stretching. The browser's own validation bubbles are replaced by the
// page's messages (novalidate).
export function onSubmit(form, fn, { fieldFor, onError } = {}) {
  const error = form.querySelector(".error");
  const bar = form.querySelector("progress");
  const status = form.querySelector(".status:not(.result)");
  const buttons = form.querySelectorAll("button");
  form.noValidate = true;
  prepareFields(form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    startAction();
    buttons.forEach((b) => { b.disabled = true; });
    const onProgress = (f) => {
      if (!bar) return;
      bar.hidden = false;
      bar.value = f;
      if (status) { status.hidden = false; status.textContent = `Checking your password… ${Math.round(f * 100)}%`; }
    };
    let failure = null;
    try {
      await fn(new FormData(form), onProgress);
    } catch (err) {
      failure = err;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      if (bar) bar.hidden = true;
      if (status) status.hidden = true;
    }
    // after the buttons are enabled again: a handler may focus one
    if (failure) {
      const r = onError?.(failure);
      if (r !== true) showError(r instanceof Error ? r : failure, error, fieldFor);
    }
  });
}

// onClick runs fn for a button's click as one action: notices cleared,
// the button disabled meanwhile, failures shown in general (or by onError).
export function onClick(button, fn, general, onError) {
  button.addEventListener("click", async () => {
    startAction();
    button.disabled = true;
    let failure = null;
    try {
      await fn();
    } catch (err) {
      failure = err;
    } finally {
      button.disabled = false;
    }
    if (failure) {
      const r = onError?.(failure);
      if (r !== true) showError(r instanceof Error ? r : failure, general);
    }
  });
}

// notice shows a one-line message from the query string (?notice=...).
export function notice(el, texts) {
  const key = new URLSearchParams(location.search).get("notice");
  if (key && texts[key]) {
    const t = texts[key];
    el.textContent = typeof t === "string" ? t : t.text;
    el.classList.toggle("warn", typeof t !== "string" && !!t.warn);
    el.hidden = false;
  }
}

// fillUsername gives a password form's hidden username field the email,
// so password managers know whose password it is.
export function fillUsername(email) {
  for (const el of document.querySelectorAll("input[autocomplete=username][hidden]")) el.value = email;
}

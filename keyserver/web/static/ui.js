// Small DOM helpers shared by the pages.
import { ERRNO } from "./api.js";

export const $ = (id) => document.getElementById(id);

export function show(el, on = true) { el.hidden = !on; }

export function setText(el, text) { el.textContent = text; }

// message turns an error into a sentence for the user (clients act on the
// errno, spec 1.4).
export function message(err) {
  switch (err?.errno) {
    case ERRNO.ACCOUNT_EXISTS: return "An account with this email address already exists.";
    case ERRNO.UNKNOWN_ACCOUNT: return "There is no account with this email address.";
    case ERRNO.INCORRECT_PASSWORD: return "Incorrect password.";
    case ERRNO.UNVERIFIED: return "Verify your email address first.";
    case ERRNO.INVALID_CODE:
      return err.body.tries !== undefined ? `Wrong code (${err.body.tries} tries left).` : "Wrong or expired code.";
    case ERRNO.INVALID_PARAM:
      if (err.body.param === "email") return "That is not a valid email address.";
      if (err.body.param === "code") return "The code has 8 digits.";
      break;
    case ERRNO.INVALID_TOKEN: return "Your session has ended. Sign in again.";
    case ERRNO.TOO_MANY_REQUESTS: return `Too many attempts. Try again in ${err.body.retryAfter || 60} seconds.`;
    case ERRNO.DISABLED: return "This account is disabled.";
    case ERRNO.UNKNOWN_DEVICE: return "That device is no longer signed in.";
  }
  if (err?.status === 503) return "The server is busy. Try again in a moment.";
  return err?.message || String(err);
}

// form wires a form's submit to fn(values) with the submit button disabled,
// the form's .error element showing failures and its <progress> element
// (if any) following the stretching. fn receives the FormData and an
// onProgress callback.
export function onSubmit(form, fn) {
  const error = form.querySelector(".error");
  const bar = form.querySelector("progress");
  const status = form.querySelector(".status");
  const buttons = form.querySelectorAll("button");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (error) { error.textContent = ""; error.hidden = true; }
    buttons.forEach((b) => { b.disabled = true; });
    const onProgress = (f) => {
      if (!bar) return;
      bar.hidden = false;
      bar.value = f;
      if (status) { status.hidden = false; status.textContent = `Stretching password… ${Math.round(f * 100)}%`; }
    };
    try {
      await fn(new FormData(form), onProgress);
    } catch (err) {
      if (error) { error.textContent = message(err); error.hidden = false; }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      if (bar) bar.hidden = true;
      if (status) status.hidden = true;
    }
  });
}

// notice shows a one-line message from the query string (?notice=...).
export function notice(el, texts) {
  const key = new URLSearchParams(location.search).get("notice");
  if (key && texts[key]) { el.textContent = texts[key]; el.hidden = false; }
}

// Landing page of the verification link: /verify?uid=<hex32>&code=<hex32>.
import { verifyCode } from "./api.js";
import { load } from "./session.js";
import { $, message, show } from "./ui.js";

const q = new URLSearchParams(location.search);
const uid = q.get("uid") || "", code = q.get("code") || "";
history.replaceState(null, "", "/verify"); // keep the code out of the history

async function run() {
  if (!/^[0-9a-fA-F]{32}$/.test(uid) || !/^[0-9a-fA-F]{32}$/.test(code)) {
    throw new Error("This verification link is incomplete. Open the link from the email again.");
  }
  await verifyCode(uid, code);
  $("verify-status").textContent = "Your email address is verified.";
  const s = load();
  show(s?.uid === uid.toLowerCase() ? $("verify-continue") : $("verify-signin"));
}

run().catch((err) => {
  $("verify-status").textContent = "Your email address could not be verified.";
  $("verify-error").textContent = message(err);
  show($("verify-error"));
  show($("verify-signin"));
});

// Embedded Signup on the relay's WhatsApp connect page. Accepts WA_EMBEDDED_SIGNUP
// messages only from the login dialog's origin; posts the code and the ids to the
// relay as soon as it has both (the code lives 30 seconds). After a failure the button
// is enabled again: when the relay says `resume` (the code exchange had succeeded),
// it posts the same ids again, without a new login; otherwise it starts a new one.
(function () {
  "use strict";
  var root = document.getElementById("signup");
  var status = document.getElementById("status");
  var launch = document.getElementById("launch");
  var cfg = root.dataset;
  var session = null;
  var code = null;
  var sent = false;
  var resumable = false;

  function say(text) { status.textContent = text; }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }

  function again(text) {
    sent = false;
    say(text);
    launch.textContent = "Try again";
    launch.disabled = false;
  }

  function finish() {
    if (sent || !session || !(code || resumable)) { return; }
    sent = true;
    launch.disabled = true;
    say("Connecting your number…");
    post("/connect/flow/whatsapp", {
      form: cfg.form, code: code,
      waba_id: session.waba_id, phone_number_id: session.phone_number_id
    }).then(function (r) {
      if (r.body && r.body.next) { window.location.assign(r.body.next); return; }
      // A code is single use: only a saved exchange lets the same ids be posted again.
      code = null;
      resumable = !!(r.body && r.body.resume);
      if (!resumable) { session = null; }
      again((r.body && r.body.message) || "Something went wrong. Try again.");
    }, function () {
      // Unknown whether the relay got it: post the same again (its steps are saved).
      resumable = true;
      again("The relay could not be reached. Try again.");
    });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== cfg.origin) { return; }
    var data = event.data;
    if (typeof data === "string") {
      try { data = JSON.parse(data); } catch (e) { return; }
    }
    if (!data || data.type !== "WA_EMBEDDED_SIGNUP") { return; }
    if (data.event === "FINISH" || data.event === "FINISH_ONLY_WABA") {
      session = data.data || {};
      finish();
    } else if (data.event === "CANCEL" || data.event === "ERROR") {
      code = null; session = null; resumable = false;
      say(data.event === "CANCEL" ? "You stopped before the end. Nothing was connected." : "Meta reported an error. Nothing was connected.");
      launch.textContent = "Try again";
      launch.disabled = false;
      var giveUp = document.getElementById("give-up");
      if (!giveUp) {
        giveUp = document.createElement("button");
        giveUp.id = "give-up"; giveUp.type = "button"; giveUp.className = "secondary";
        giveUp.textContent = "Give up";
        giveUp.addEventListener("click", function () {
          post("/connect/flow/whatsapp/cancel", { form: cfg.form, event: data.event }).then(function (r) {
            if (r.body && r.body.next) { window.location.assign(r.body.next); }
          });
        });
        launch.parentNode.insertBefore(giveUp, status);
      }
    }
  });

  window.fbAsyncInit = function () {
    FB.init({ appId: cfg.appId, autoLogAppEvents: true, xfbml: false, version: cfg.version });
  };

  launch.addEventListener("click", function () {
    if (resumable && session) { finish(); return; }
    if (typeof FB === "undefined") { say("Facebook could not be loaded. Check your connection and try again."); return; }
    code = null; session = null;
    launch.disabled = true;
    say("Waiting for Facebook…");
    FB.login(function (response) {
      if (response && response.authResponse && response.authResponse.code) {
        code = response.authResponse.code;
        finish();
      } else {
        launch.disabled = false;
      }
    }, {
      config_id: cfg.configId,
      response_type: "code",
      override_default_response_type: true,
      extras: { setup: {}, featureType: "", sessionInfoVersion: "3" }
    });
  });
})();

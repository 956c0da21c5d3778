// The scribe page saves as the scribe types: a second after the last key, and when the page is left. Without
// scripts the Save button does the same. Each scribe's text is their own, so nothing here can overwrite another's.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosave]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var status = form.querySelector(".autosave-status");
  var timer = null;
  var sending = false;
  var again = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function save() {
    timer = null;
    if (sending) {
      again = true;
      return;
    }
    sending = true;
    say("Saving…");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
      keepalive: true,
    })
      .then(function (response) {
        if (response.ok) {
          // The time comes from the server, in the meeting's own zone, as every time on the site.
          return response.json().then(function (answer) {
            // Typed again while this was on its way: that text is not saved yet, and its own save says so.
            if (!timer && !again) {
              say("Saved at " + answer.saved_at + ".");
            }
          });
        }
        if (response.status === 410) {
          say("Not saved: this scribe link no longer works. Reload the page.");
        } else {
          say("Not saved: press Save to see why.");
        }
      })
      .catch(function () {
        say("Not saved: no connection. Your text is still here; press Save when you are back online.");
      })
      .then(function () {
        sending = false;
        if (again) {
          again = false;
          save();
        }
      });
  }

  form.addEventListener("input", function () {
    say("Typing…");
    if (timer) {
      clearTimeout(timer);
    }
    timer = setTimeout(save, 1000);
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && timer) {
      clearTimeout(timer);
      save();
    }
  });
})();

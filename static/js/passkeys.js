/* Lanyard: passkeys (WebAuthn) on the sign-in, second-factor and account
 * pages. Served as /static/js/passkeys.js (no inline script: the pages' CSP
 * allows scripts from this origin only). It hooks elements by id:
 *
 * - #passkey-sign-in: "Sign in with a passkey" on /login;
 * - #passkey-second-factor: the passkey button of /login/mfa;
 * - #passkey-reauth: a passkey re-entry on /account/reauth;
 * - #passkey-add: the form that adds a passkey on /account/passkeys.
 *
 * Buttons name their endpoints in data-options and data-finish. Errors go
 * to #passkey-error (or the element named by data-error). */
(function () {
  "use strict";

  function toBuffer(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBuffer(c.id) });
    });
  }

  /* The server's JSON options, with the binary fields as ArrayBuffers. */
  function creationOptions(pk) {
    var o = Object.assign({}, pk);
    o.challenge = toBuffer(pk.challenge);
    o.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) });
    if (pk.excludeCredentials) o.excludeCredentials = descriptors(pk.excludeCredentials);
    return o;
  }

  function requestOptions(pk) {
    var o = Object.assign({}, pk);
    o.challenge = toBuffer(pk.challenge);
    if (pk.allowCredentials) o.allowCredentials = descriptors(pk.allowCredentials);
    return o;
  }

  /* The credential as JSON, with the binary fields in base64url. */
  function credentialJson(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      response: { clientDataJSON: toText(r.clientDataJSON) },
      extensions: {}
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
      var ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
      if (ext.credProps) out.extensions.credProps = ext.credProps;
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var err = new Error((data && (data.detail || data.title)) || "Something went wrong. Try again.");
          err.problem = data || {};
          throw err;
        }
        return data || {};
      });
    });
  }

  function showError(el, err) {
    var box = document.getElementById((el && el.dataset.error) || "passkey-error");
    if (!box && el && el.parentNode) {
      box = document.createElement("div");
      box.className = "alert";
      box.id = "passkey-error";
      box.setAttribute("role", "alert");
      el.parentNode.insertBefore(box, el);
    }
    var text = err && err.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out. Try again."
      : (err && err.message) || "Something went wrong. Try again.";
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }

  function clearError(el) {
    var box = document.getElementById((el && el.dataset.error) || "passkey-error");
    if (box) box.hidden = true;
  }

  /* A recent sign-in is needed: re-enter the password and come back. */
  function handled(err) {
    if (err && err.problem && err.problem.type === "urn:lanyard:problem:recent-sign-in-required") {
      location.assign("/account/reauth?return_to=" + encodeURIComponent(location.pathname));
      return true;
    }
    return false;
  }

  function returnTo() {
    var field = document.querySelector("input[name=return_to]");
    if (field && field.value) return field.value;
    return new URLSearchParams(location.search).get("return_to");
  }

  /* navigator.credentials.get() between an options and a finish endpoint. */
  function signIn(button) {
    clearError(button);
    button.disabled = true;
    post(button.dataset.options, {})
      .then(function (started) {
        return navigator.credentials.get({ publicKey: requestOptions(started.publicKey) })
          .then(function (cred) {
            var body = { handle: started.handle, credential: credentialJson(cred) };
            var target = returnTo();
            if (target) body.return_to = target;
            return post(button.dataset.finish, body);
          });
      })
      .then(function (done) { location.assign(done.redirect || "/"); })
      .catch(function (err) {
        button.disabled = false;
        if (!handled(err)) showError(button, err);
      });
  }

  function add(form) {
    var button = form.querySelector("button[type=submit]");
    var name = form.querySelector("input[name=name]");
    clearError(form);
    if (button) button.disabled = true;
    post(form.dataset.options, {})
      .then(function (started) {
        return navigator.credentials.create({ publicKey: creationOptions(started.publicKey) })
          .then(function (cred) {
            return post(form.dataset.finish, {
              handle: started.handle,
              name: name ? name.value : "",
              credential: credentialJson(cred)
            });
          });
      })
      .then(function (done) { location.assign(done.redirect || location.pathname); })
      .catch(function (err) {
        if (button) button.disabled = false;
        if (!handled(err)) showError(form, err);
      });
  }

  function ready() {
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    ["passkey-sign-in", "passkey-second-factor", "passkey-reauth"].forEach(function (id) {
      var button = document.getElementById(id);
      if (!button) return;
      if (!supported) return;
      button.hidden = false;
      button.addEventListener("click", function (e) {
        e.preventDefault();
        signIn(button);
      });
    });
    var form = document.getElementById("passkey-add");
    if (form) {
      if (!supported) {
        var note = document.getElementById("passkey-unsupported");
        if (note) note.hidden = false;
        return;
      }
      form.hidden = false;
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        add(form);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();

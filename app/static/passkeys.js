// Passkeys (WebAuthn) for the forms marked data-passkey="register" or "authenticate".
// Served from our origin (CSP script-src 'self'); without it every other form still works.
// On submit: fetch options (a single-use challenge) from data-options, ask the browser,
// put its answer (JSON) into the form's hidden "credential" field, and submit the form.
"use strict";

(function () {
  var host = location.hostname;
  // An IP address is never a valid RP ID (WebAuthn §5.1.4.1): no passkeys on such a host.
  if (!window.PublicKeyCredential || !navigator.credentials ||
      /^[0-9.]+$/.test(host) || host.indexOf(":") >= 0) {
    return;
  }

  function bytes(value) {
    var text = atob(value.replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out.buffer;
  }

  function b64url(buffer) {
    var text = "";
    new Uint8Array(buffer).forEach(function (b) { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    json.challenge = bytes(json.challenge);
    json.user.id = bytes(json.user.id);
    (json.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return json;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    json.challenge = bytes(json.challenge);
    (json.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
    return json;
  }

  function serialise(credential) {
    if (credential.toJSON) return credential.toJSON();
    var r = credential.response;
    var response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64url(r.authenticatorData);
      response.signature = b64url(r.signature);
      if (r.userHandle) response.userHandle = b64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: b64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  function showError(form, message) {
    var box = form.querySelector(".error");
    if (!box) {
      box = document.createElement("p");
      box.className = "error";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    box.textContent = message;
  }

  async function run(form) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    var answer = await fetch(form.dataset.options, {
      method: "POST",
      body: body,
      credentials: "same-origin",
    });
    if (!answer.ok) throw new Error("options " + answer.status);
    var json = await answer.json();
    var credential = form.dataset.passkey === "register"
      ? await navigator.credentials.create({ publicKey: creationOptions(json) })
      : await navigator.credentials.get({ publicKey: requestOptions(json) });
    form.elements.credential.value = JSON.stringify(serialise(credential));
    form.submit();
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(form).catch(function () {
        showError(form, "The passkey did not work (cancelled, or not available here). Try again.");
      });
    });
  });
})();

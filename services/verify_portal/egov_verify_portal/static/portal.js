// Progressive enhancement of the upload form: drag and drop, the size limit checked before
// upload, and a "verifying" state. Everything works without this script.
"use strict";
(function () {
  document.documentElement.classList.add("js");

  function formatSize(bytes) {
    var mib = 1024 * 1024;
    if (bytes >= mib) { return (bytes / mib).toFixed(1).replace(/\.0$/, "") + " MB"; }
    if (bytes >= 1024) { return Math.round(bytes / 1024) + " KB"; }
    return bytes + " B";
  }

  function enhance(form) {
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-dropzone]");
    var status = form.querySelector(".file-status");
    var button = form.querySelector("button[type=submit]");
    var limit = parseInt(form.getAttribute("data-max-bytes"), 10);

    function check() {
      var file = input.files && input.files[0];
      status.classList.remove("problem");
      button.disabled = false;
      if (!file) { status.textContent = ""; return true; }
      if (file.size > limit) {
        var size = formatSize(file.size);
        if (size === formatSize(limit)) { size = file.size.toLocaleString() + " B"; }
        status.textContent = form.getAttribute("data-msg-too-large").replace("{size}", size);
        status.classList.add("problem");
        button.disabled = true;
        return false;
      }
      status.textContent = form.getAttribute("data-msg-selected")
        .replace("{name}", file.name).replace("{size}", formatSize(file.size));
      return true;
    }

    input.addEventListener("change", check);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        check();
      }
    });
    var label = button.textContent;
    // Coming back to the page from the browser's cache must not leave the button disabled.
    window.addEventListener("pageshow", function () {
      button.textContent = label;
      check();
    });
    form.addEventListener("submit", function (event) {
      if (!check()) { event.preventDefault(); return; }
      button.disabled = true;
      button.textContent = form.getAttribute("data-msg-verifying");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.upload"), enhance);
  });
})();
